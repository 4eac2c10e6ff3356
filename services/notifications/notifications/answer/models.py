"""What notifications keeps to match a participant's SMS reply to an appointment, without
keeping the number: a keyed hash of it (HMAC-SHA256), per reminder sent to it; the replies
seen (by the provider's MessageSid, so that a repeated webhook has no second effect); and the
numbers that sent STOP, to which no SMS goes any more."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from notifications.db import Base


class SmsRecipient(Base):
    """An SMS about an appointment went to the number with this hash, in this language."""

    __tablename__ = "sms_recipients"
    __table_args__ = (Index("ix_sms_recipients_number", "number_hash", "sent_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reminder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    number_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class InboundSms(Base):
    """A reply the provider posted, by its MessageSid: what it did, never what it said."""

    __tablename__ = "inbound_sms"

    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(24))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The acknowledgement sent back, so that a repeated webhook answers the same.
    language: Mapped[str | None] = mapped_column(String(8))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SmsOptOut(Base):
    """STOP from this number: no SMS goes to it any more (START takes it back)."""

    __tablename__ = "sms_opt_outs"

    number_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
