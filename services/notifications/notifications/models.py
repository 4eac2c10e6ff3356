"""Every table of the notifications database, for Alembic."""
from notifications.answer.models import InboundSms, SmsOptOut, SmsRecipient
from notifications.appointment.models import Appointment, ParticipantErasure
from notifications.db import Base
from notifications.delivery.models import Delivery
from notifications.inbox.models import (
    EmailCopy,
    EmailPreference,
    InboxEntry,
    InboxRead,
    StaffMember,
)
from notifications.reminder.models import Reminder

__all__ = [
    "Appointment", "Base", "Delivery", "EmailCopy", "EmailPreference", "InboxEntry",
    "InboxRead", "InboundSms", "ParticipantErasure", "Reminder", "SmsOptOut", "SmsRecipient",
    "StaffMember",
]
