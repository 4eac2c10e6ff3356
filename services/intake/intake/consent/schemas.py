from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates

from buendnis_common.timeutil import berlin_today
from buendnis_common.validation import FieldError, Schema
from intake.consent.models import DATA_CATEGORIES, PURPOSES


class ConsentCreate(Schema):
    recipient_org = fields.String(required=True, validate=validate.Length(min=1, max=120))
    data_categories = fields.List(
        fields.String(validate=validate.OneOf(DATA_CATEGORIES)),
        required=True,
        validate=validate.Length(min=1),
    )
    purpose = fields.String(load_default="referral", validate=validate.OneOf(PURPOSES))
    valid_until = fields.Date(required=True)

    @validates("data_categories")
    def _no_repeats(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError(FieldError("consent.category_twice"))

    @validates("valid_until")
    def _in_the_future(self, value, **_kwargs):
        today = berlin_today()
        if value < today:
            raise ValidationError(FieldError("consent.valid_until_past"))
        if (value - today).days > 3 * 366:
            raise ValidationError(FieldError("consent.valid_until_too_far"))


class Consent(Schema):
    id = fields.UUID()
    participant_id = fields.UUID()
    recipient_org = fields.String()
    data_categories = fields.List(fields.String())
    purpose = fields.String()
    valid_until = fields.Date()
    valid = fields.Method("_valid", metadata={"description": "Neither withdrawn nor expired."})
    recorded_by = fields.String()
    recorded_by_org = fields.String()
    recorded_at = fields.DateTime()
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_by = fields.String(allow_none=True)

    def _valid(self, consent) -> bool:
        return consent.is_valid(berlin_today())
