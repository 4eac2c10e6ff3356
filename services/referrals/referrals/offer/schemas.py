from marshmallow import ValidationError, fields, validate, validates_schema

from buendnis_common.validation import FieldError, Schema
from referrals.codes import (
    LANGUAGE_PATTERN,
    NEED_CATEGORIES,
    OFFER_MODES,
    RESIDENCE_STATUSES,
)

_LANGUAGES = fields.List(
    fields.String(validate=validate.Regexp(LANGUAGE_PATTERN,
                                                 error=FieldError("offer.language_code"))),
    validate=validate.Length(max=20),
)
_AGE = validate.Range(min=0, max=120)


class _OfferFields(Schema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    category = fields.String(validate=validate.OneOf(NEED_CATEGORIES))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    languages = _LANGUAGES
    municipality = fields.String(allow_none=True, validate=validate.Length(max=120))
    mode = fields.String(allow_none=True, validate=validate.OneOf(OFFER_MODES))
    eligible_residence_statuses = fields.List(
        fields.String(validate=validate.OneOf(RESIDENCE_STATUSES)),
        metadata={"description": "Empty: open to every residence status."},
    )
    min_age = fields.Integer(allow_none=True, validate=_AGE)
    max_age = fields.Integer(allow_none=True, validate=_AGE)
    capacity = fields.Integer(
        allow_none=True, validate=validate.Range(min=0),
        metadata={"description": "Free places; empty when not limited."},
    )
    schedule = fields.String(allow_none=True, validate=validate.Length(max=500))
    contact = fields.String(
        allow_none=True, validate=validate.Length(max=500),
        metadata={"description": "How partners reach the provider about this offer."},
    )
    active = fields.Boolean()
    public = fields.Boolean(metadata={
        "description": "Listed in the open offer directory (/hsds/, no token). Default: false."
    })

    @validates_schema
    def _age_range(self, data, **_kwargs):
        low, high = data.get("min_age"), data.get("max_age")
        if low is not None and high is not None and low > high:
            raise ValidationError(FieldError("offer.max_age_below_min_age"), "max_age")


class OfferCreate(_OfferFields):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.OneOf(NEED_CATEGORIES))


class OfferUpdate(_OfferFields):
    """Any subset of the offer's fields; the provider stays the same."""


class Fit(Schema):
    score = fields.Integer()
    reasons = fields.List(fields.String())


class Offer(_OfferFields):
    id = fields.UUID(dump_only=True)
    provider_org = fields.String(dump_only=True)
    alliance = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    fit = fields.Nested(
        Fit, dump_only=True,
        metadata={"description": "Only when listing with participant_id: why it fits."},
    )


class OfferQuery(Schema):
    category = fields.String(validate=validate.OneOf(NEED_CATEGORIES))
    language = fields.String(validate=validate.Regexp(LANGUAGE_PATTERN))
    provider_org = fields.String(validate=validate.Length(max=120))
    active = fields.Boolean(metadata={"description": "Default: active offers only."})
    participant_id = fields.UUID(
        metadata={"description": "One of your participants: the offers that fit, best first."}
    )
