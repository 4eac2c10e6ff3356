from marshmallow import fields

from buendnis_common.validation import Schema
from referrals.appointment.schemas import Appointment
from referrals.referral.schemas import HistoryEntry, Message, Referral


class ExportedReferral(Referral):
    history = fields.List(fields.Nested(HistoryEntry))
    messages = fields.List(fields.Nested(Message))
    appointments = fields.List(fields.Nested(Appointment))


class Export(Schema):
    referrals = fields.List(fields.Nested(ExportedReferral))
