"""Outgoing messages that must go out exactly once, and the record of every delivery attempt.

A row that is due is *claimed* by one dispatcher (``sending``, a claim token and a lease), which
then records the moment it hands the message over (``handed_over_at``, the point after which
the receiving server may hold the message) and finally its outcome. What happens to a row whose
worker died is decided from these columns alone; see ``delivery.claims``.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from notifications.db import Base

SCHEDULED = "scheduled"
SENDING = "sending"
SENT = "sent"
CANCELLED = "cancelled"
FAILED = "failed"
STATUSES = (SCHEDULED, SENDING, SENT, CANCELLED, FAILED)
PENDING = (SCHEDULED, SENDING)


class ClaimMixin:
    """The columns of a message that a periodic dispatcher claims and sends exactly once."""

    @declared_attr.directive
    def __table_args__(cls):
        return (Index(f"ix_{cls.__tablename__}_status_due", "status", "due_at"),)

    # Sent along with the message (SMTP Message-ID, SMS provider's idempotency key).
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=SCHEDULED)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handed_over_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # False when the worker stopped after handing the message over and before the server's
    # answer was recorded: the message was not sent again (see delivery.claims).
    confirmed: Mapped[bool | None] = mapped_column(Boolean)
    last_error: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# Outcomes of one attempt.
ACCEPTED = "accepted"  # the server or provider took the message
UNCONFIRMED = "unconfirmed"  # handed over, answer lost (worker stopped, time-out)
TEMPORARY_FAILURE = "temporary_failure"
PERMANENT_FAILURE = "permanent_failure"


class Delivery(Base):
    """One attempt to deliver a message: channel, masked address, outcome. The address itself
    is fetched from intake at send time and never stored."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    reminder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reminders.id", ondelete="CASCADE"), index=True
    )
    email_copy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("email_copies.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    channel: Mapped[str] = mapped_column(String(8))
    masked_address: Mapped[str | None] = mapped_column(String(120))
    language: Mapped[str | None] = mapped_column(String(8))
    idempotency_key: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
