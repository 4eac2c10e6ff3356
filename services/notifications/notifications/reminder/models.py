"""Reminders: one row per appointment, offset and recipient, plus the notices a participant
gets when the appointment moves or is cancelled."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from notifications.db import Base
from notifications.delivery.models import ClaimMixin

# What the message is.
REMINDER = "reminder"
MOVED = "moved"
CANCELLATION = "cancellation"
KINDS = (REMINDER, MOVED, CANCELLATION)

# Who gets it: the participant (SMS or e-mail, as they chose) or the case worker who made the
# referral (the in-app inbox).
PARTICIPANT = "participant"
CASE_WORKER = "case_worker"

# Why a reminder was cancelled or not sent.
PAST_AT_BOOKING = "past_at_booking"
APPOINTMENT_MOVED = "appointment_moved"
APPOINTMENT_CANCELLED = "appointment_cancelled"
APPOINTMENT_ATTENDED = "appointment_attended"
PARTICIPANT_ERASED = "participant_erased"
PARTICIPANT_UNKNOWN = "participant_unknown"
# The participant's consent for the appointment's organisation did not hold at sending time.
NO_CONSENT = "no_consent"
NO_CHANNEL = "channel_none"
NO_ADDRESS = "no_address"
QUIET_HOURS = "quiet_hours"
TOO_LATE = "too_late"
# The participant sent STOP from the number: no SMS to it any more.
SMS_STOPPED = "sms_stopped"


class Reminder(ClaimMixin, Base):
    __tablename__ = "reminders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(16))
    offset_seconds: Mapped[int | None] = mapped_column(Integer)
    # When the offset falls (start − offset); ``due_at`` is earlier when quiet hours moved it.
    nominal_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(8))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
