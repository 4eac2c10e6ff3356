from datetime import UTC, datetime

from marshmallow import ValidationError, fields, validate, validates_schema

from buendnis_common.answers import RESPONSES
from buendnis_common.validation import FieldError, Schema
from referrals.appointment.models import STATUSES
from referrals.codes import MODES


def _end_after_start(data: dict) -> None:
    start, end = data.get("start"), data.get("end")
    if start is not None and end is not None and end <= start:
        raise ValidationError(FieldError("appointment.ends_before_start"), "end")


class AppointmentCreate(Schema):
    start = fields.AwareDateTime(required=True, metadata={"description": "With its offset."})
    end = fields.AwareDateTime(required=True, metadata={"description": "With its offset."})
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    location = fields.String(allow_none=True, validate=validate.Length(max=300))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _times(self, data, **_kwargs):
        _end_after_start(data)


class AppointmentUpdate(Schema):
    """Move it (``start``, ``end``), or set ``status``: ``cancelled`` (with a ``reason``),
    ``fulfilled`` or ``noshow``."""

    start = fields.AwareDateTime()
    end = fields.AwareDateTime()
    mode = fields.String(validate=validate.OneOf(MODES))
    location = fields.String(allow_none=True, validate=validate.Length(max=300))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    status = fields.String(validate=validate.OneOf(STATUSES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _times(self, data, **_kwargs):
        _end_after_start(data)
        if data.get("status") == "cancelled" and not (data.get("reason") or "").strip():
            raise ValidationError(FieldError("appointment.reason_required"), "reason")


def _representable_in_utc(value: datetime) -> None:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(FieldError("appointment.time_outside_calendar")) from None


class AppointmentQuery(Schema):
    """The appointments on the caller's organisation's referrals that start in
    [``from``, ``to``), earliest first."""

    from_ = fields.AwareDateTime(data_key="from", validate=_representable_in_utc,
                                 metadata={"description": "With its offset; default: now."})
    to = fields.AwareDateTime(validate=_representable_in_utc,
                              metadata={"description": "With its offset; excluded."})
    status = fields.String(validate=validate.OneOf(STATUSES),
                           metadata={"description": "Default: every status."})
    participant_response = fields.String(
        validate=validate.OneOf(RESPONSES),
        metadata={"description": "Only appointments the participant answered so "
                                 "(cancel_requested: asked to cancel)."})

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError(FieldError("query.from_after_to"), "from")


class Appointment(Schema):
    id = fields.UUID()
    referral_id = fields.UUID()
    start = fields.DateTime()
    end = fields.DateTime()
    mode = fields.String()
    location = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    status = fields.String()
    cancel_reason = fields.String(allow_none=True)
    booked_by_org = fields.String()
    booked_by = fields.String()
    participant_response = fields.String(
        allow_none=True, metadata={"description": "The participant's answer to a reminder: "
                                                  "null, confirmed or cancel_requested."})
    responded_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
