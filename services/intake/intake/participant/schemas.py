"""What clients send and get back. Every field is validated; errors name the field."""
from __future__ import annotations

from datetime import date

import phonenumbers
import pycountry
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from buendnis_common.timeutil import age_on, berlin_today
from buendnis_common.validation import FieldError, Schema
from intake.participant.models import (
    CHANNELS,
    GENDERS,
    NEED_CATEGORIES,
    NEED_STATUSES,
    QUALIFICATIONS,
    RESIDENCE_STATUSES,
)

MIN_AGE, MAX_AGE = 18, 27
_COUNTRIES = {country.alpha_2 for country in pycountry.countries}
_LANGUAGES = {lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")}


def _country(value: str) -> None:
    if value not in _COUNTRIES:
        raise ValidationError(FieldError("participant.country_code"))


def _language(value: str) -> None:
    if value not in _LANGUAGES:
        raise ValidationError(FieldError("participant.language_code"))


def _phone(value: str) -> None:
    message = FieldError("participant.phone_format")
    if not value.startswith("+"):
        raise ValidationError(message)
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(message) from None
    if not phonenumbers.is_valid_number(number) or phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    ) != value:
        raise ValidationError(message)


def _plausible_birth_date(value: date) -> None:
    today = berlin_today()
    if value > today:
        raise ValidationError(FieldError("participant.birth_date_future"))
    if age_on(value, today) > 100:
        raise ValidationError(FieldError("participant.birth_date_too_old", years=100))


class Contact(Schema):
    phone = fields.String(validate=_phone, allow_none=True)
    email = fields.Email(validate=validate.Length(max=254), allow_none=True)
    preferred_channel = fields.String(validate=validate.OneOf(CHANNELS), allow_none=True)
    language = fields.String(validate=_language, allow_none=True)

    @validates_schema
    def _channel_has_an_address(self, data, **_kwargs):
        channel = data.get("preferred_channel")
        if channel == "sms" and not data.get("phone"):
            raise ValidationError(FieldError("participant.sms_needs_phone"), "preferred_channel")
        if channel == "email" and not data.get("email"):
            raise ValidationError(FieldError("participant.email_needs_address"),
                                  "preferred_channel")


class Education(Schema):
    highest_qualification = fields.String(validate=validate.OneOf(QUALIFICATIONS))
    years_of_schooling = fields.Integer(validate=validate.Range(min=0, max=25), allow_none=True)
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)


class NeedCreate(Schema):
    category = fields.String(required=True, validate=validate.OneOf(NEED_CATEGORIES))
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)


class NeedUpdate(Schema):
    status = fields.String(validate=validate.OneOf(NEED_STATUSES))
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)


class Need(Schema):
    id = fields.UUID()
    category = fields.String()
    status = fields.String()
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class _ParticipantFields(Schema):
    given_name = fields.String(validate=validate.Length(min=1, max=200))
    family_name = fields.String(validate=validate.Length(min=1, max=200))
    birth_date = fields.Date(validate=_plausible_birth_date)
    residence_status = fields.String(validate=validate.OneOf(RESIDENCE_STATUSES))
    residence_valid_until = fields.Date(allow_none=True)
    gender = fields.String(validate=validate.OneOf(GENDERS), allow_none=True)
    nationality = fields.String(validate=_country, allow_none=True)
    languages = fields.List(fields.String(validate=_language), validate=validate.Length(max=20))
    municipality = fields.String(validate=validate.Length(max=200), allow_none=True)
    contact = fields.Nested(Contact, allow_none=True)
    education = fields.Nested(Education, allow_none=True)

    @validates("languages")
    def _no_repeats(self, value, **_kwargs):
        if len(set(value)) != len(value):
            raise ValidationError(FieldError("participant.language_twice"))


class ParticipantCreate(_ParticipantFields):
    given_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    family_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    birth_date = fields.Date(required=True, validate=_plausible_birth_date)
    residence_status = fields.String(required=True, validate=validate.OneOf(RESIDENCE_STATUSES))
    needs = fields.List(fields.Nested(NeedCreate), validate=validate.Length(max=30))
    eligibility_override_reason = fields.String(validate=validate.Length(min=3, max=2000))

    @validates_schema(skip_on_field_errors=False)  # told together with other errors
    def _in_the_programme_age_range(self, data, **_kwargs):
        birth_date = data.get("birth_date")
        if birth_date is None or data.get("eligibility_override_reason"):
            return
        age = age_on(birth_date, berlin_today())
        if not MIN_AGE <= age <= MAX_AGE:
            raise ValidationError(FieldError("participant.age_out_of_range", min=MIN_AGE,
                                             max=MAX_AGE, age=age), "birth_date")


class ParticipantUpdate(_ParticipantFields):
    """Any subset of the fields; needs change through their own endpoint."""


class Organization(Schema):
    organization = fields.String()
    organization_name = fields.String()


class Participant(_ParticipantFields):
    id = fields.UUID()
    pseudonym = fields.String()
    owner_org = fields.String()
    needs = fields.List(fields.Nested(Need))
    eligibility_override_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ParticipantCreated(Participant):
    possible_duplicates = fields.List(
        fields.Nested(Organization),
        metadata={"description": "Organisations of the same alliance that may already know "
                  "this person (same normalised name and birth date). Nothing else is shown."},
    )


class ParticipantQuery(Schema):
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "Part of the given or family name."})
    need_category = fields.String(validate=validate.OneOf(NEED_CATEGORIES))
    need_status = fields.String(validate=validate.OneOf(NEED_STATUSES))
    residence_status = fields.String(validate=validate.OneOf(RESIDENCE_STATUSES))
