from marshmallow import ValidationError, fields, validate, validates_schema

from buendnis_common.messages import Label
from buendnis_common.validation import FieldError, Schema
from referrals.codes import NEED_CATEGORIES
from referrals.referral.models import STATUSES
from referrals.referral.service import REASON_REQUIRED


class ReferralCreate(Schema):
    participant_id = fields.UUID(required=True, metadata={"description": "Your participant."})
    to_org = fields.String(
        required=True, validate=validate.Length(min=1, max=120),
        metadata={"description": "Alias of the receiving organisation, in your alliance."},
    )
    need_category = fields.String(required=True, validate=validate.OneOf(NEED_CATEGORIES))
    offer_id = fields.UUID(allow_none=True, metadata={"description": "An offer of to_org."})
    note = fields.String(
        allow_none=True, validate=validate.Length(max=2000),
        metadata={"description": "Your own note; the receiver does not see it (use messages)."},
    )


class StatusUpdate(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _reason(self, data, **_kwargs):
        if data.get("status") in REASON_REQUIRED and not (data.get("reason") or "").strip():
            raise ValidationError(FieldError("referral.reason_required",
                                             status=Label("referral_status", data["status"])),
                                  "reason")


class ReferralQuery(Schema):
    box = fields.String(validate=validate.OneOf(("sent", "received")),
                        metadata={"description": "Default: both."})
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)),
                         metadata={"description": "Repeat for several."})
    overdue = fields.Boolean()
    participant_id = fields.UUID(metadata={"description": "Sent referrals of your participant."})
    cancel_requested = fields.Boolean(metadata={
        "description": "true: only referrals with a booked appointment whose participant asked "
                       "to cancel it (by SMS reply or the reminder's link)."})


class Identity(Schema):
    given_name = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    birth_date = fields.String(allow_none=True)
    gender = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)


class Contact(Schema):
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    preferred_channel = fields.String(allow_none=True)
    language = fields.String(allow_none=True)


class Residence(Schema):
    residence_status = fields.String(allow_none=True)
    residence_valid_until = fields.String(allow_none=True)
    municipality = fields.String(allow_none=True)


class Need(Schema):
    id = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class Education(Schema):
    highest_qualification = fields.String(allow_none=True)
    years_of_schooling = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class SharedParticipant(Schema):
    """The pseudonym, and only the categories the participant consented to share."""

    pseudonym = fields.String()
    identity = fields.Nested(Identity)
    contact = fields.Nested(Contact)
    languages = fields.List(fields.String())
    residence = fields.Nested(Residence)
    needs = fields.List(fields.Nested(Need))
    education = fields.Nested(Education)


class Referral(Schema):
    id = fields.UUID()
    status = fields.String()
    from_org = fields.String()
    to_org = fields.String()
    alliance = fields.String()
    need_category = fields.String()
    offer_id = fields.UUID(allow_none=True)
    sender_user = fields.String()
    participant = fields.Nested(SharedParticipant, allow_none=True)
    shared_categories = fields.List(fields.String())
    snapshot_dropped_at = fields.DateTime(allow_none=True)
    snapshot_dropped_reason = fields.String(
        allow_none=True,
        metadata={"description": "consent_withdrawn, consent_expired or participant_erased: "
                                 "why the participant's data is no longer shown."},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    due_at = fields.DateTime(metadata={"description": "When the receiver should have answered."})
    overdue = fields.Boolean()
    overdue_at = fields.DateTime(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    viewer_role = fields.String(metadata={"description": "sender or receiver"})
    allowed_statuses = fields.List(fields.String(),
                                   metadata={"description": "What you can set next."})
    # The sender's own reference; absent from the receiver's view.
    participant_id = fields.UUID()
    note = fields.String(allow_none=True)
    consent_id = fields.UUID(allow_none=True)


class HistoryEntry(Schema):
    status = fields.String()
    previous_status = fields.String(allow_none=True)
    organization = fields.String()
    user = fields.String()
    at = fields.DateTime()
    reason = fields.String(allow_none=True)


class MessageCreate(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class Message(Schema):
    id = fields.UUID()
    referral_id = fields.UUID()
    author_org = fields.String()
    author = fields.String()
    text = fields.String(allow_none=True)
    created_at = fields.DateTime()
