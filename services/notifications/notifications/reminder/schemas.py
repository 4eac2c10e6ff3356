"""What clients get about reminders."""
from __future__ import annotations

from marshmallow import fields

from buendnis_common.validation import Schema
from notifications.reminder.models import KINDS


class ReminderQuery(Schema):
    appointment_id = fields.UUID(required=True)


class Reminder(Schema):
    id = fields.UUID()
    appointment_id = fields.UUID()
    kind = fields.String(metadata={"description": f"One of: {', '.join(KINDS)} (notices to "
                                   "the participant that the appointment moved or was "
                                   "cancelled)."})
    recipient = fields.String(metadata={"description": "participant or case_worker."})
    offset = fields.String(allow_none=True, metadata={"description": "Like 24h, 2h, 30m."})
    offset_seconds = fields.Integer(allow_none=True)
    due_at = fields.DateTime()
    channel = fields.String(
        allow_none=True,
        metadata={"description": "sms, email, none or inbox; for the participant decided at "
                  "send time from their current choice."})
    status = fields.String(metadata={"description": "scheduled, sent, cancelled or failed."})
    sent_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True,
                           metadata={"description": "Why it was cancelled (a code)."})
    attempts = fields.Integer()
    confirmed = fields.Boolean(
        allow_none=True,
        metadata={"description": "false: handed to the mail server, whose answer was lost; "
                  "it was not sent again."})
