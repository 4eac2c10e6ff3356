from marshmallow import Schema, fields, validate

from intake.participant.models import RESIDENCE_STATUSES


class ParticipantCreate(Schema):
    given_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    family_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    birth_date = fields.Date(required=True)
    residence_status = fields.String(
        required=True, validate=validate.OneOf(RESIDENCE_STATUSES)
    )


class Participant(Schema):
    id = fields.UUID(dump_only=True)
    pseudonym = fields.String(dump_only=True)
    owner_org = fields.String(dump_only=True)
    given_name = fields.String()
    family_name = fields.String()
    birth_date = fields.Date()
    residence_status = fields.String()
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
