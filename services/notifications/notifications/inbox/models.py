"""The partners' inbox: entries addressed to one user or to all case workers of an
organisation, who read them, and the e-mail copies each user may switch off per kind."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from buendnis_common.policy import CASE_WORK
from notifications.db import Base
from notifications.delivery.models import ClaimMixin

REFERRAL_RECEIVED = "referral.received"
REFERRAL_ACCEPTED = "referral.accepted"
REFERRAL_REJECTED = "referral.rejected"
REFERRAL_STATUS_CHANGED = "referral.status_changed"
REFERRAL_OVERDUE = "referral.overdue"
REFERRAL_MESSAGE = "referral.message_posted"
APPOINTMENT_BOOKED = "appointment.booked"
APPOINTMENT_MOVED = "appointment.moved"
APPOINTMENT_CANCELLED = "appointment.cancelled"
APPOINTMENT_REMINDER = "appointment.reminder"
REMINDER_FAILED = "reminder.failed"
# Handed to the mail server, whose answer never came (a worker died, a time-out): not sent
# again, so it may not have arrived.
REMINDER_UNCONFIRMED = "reminder.unconfirmed"
# The receiver no longer sees the participant's data: the consent was withdrawn or expired.
REFERRAL_CONSENT_ENDED = "referral.consent_ended"
# The participant answered a reminder (SMS reply or the e-mail's link): both sides hear of it.
ANSWER_CONFIRMED = "answer.confirmed"
ANSWER_CANCEL_REQUESTED = "answer.cancel_requested"
# An SMS reply that is neither yes, no nor STOP (its text is kept nowhere).
ANSWER_UNCLEAR = "answer.unclear"
# STOP: no more SMS to the participant's number.
ANSWER_SMS_STOPPED = "answer.sms_stopped"
KINDS = (
    REFERRAL_RECEIVED, REFERRAL_ACCEPTED, REFERRAL_REJECTED, REFERRAL_STATUS_CHANGED,
    REFERRAL_OVERDUE, REFERRAL_MESSAGE, REFERRAL_CONSENT_ENDED, APPOINTMENT_BOOKED,
    APPOINTMENT_MOVED,
    APPOINTMENT_CANCELLED, APPOINTMENT_REMINDER, REMINDER_FAILED, REMINDER_UNCONFIRMED,
    ANSWER_CONFIRMED, ANSWER_CANCEL_REQUESTED, ANSWER_UNCLEAR, ANSWER_SMS_STOPPED,
)

# Entries addressed to an organisation are for the people who work its cases: the role policy's
# case workers (the only ones who can open the referral or appointment an entry points to).
CASE_ROLES = tuple(sorted(CASE_WORK))


class InboxEntry(Base):
    """Something a partner should know. Ids, codes and times only: the reader follows the
    referral or appointment id to see more, with that service's own access rules."""

    __tablename__ = "inbox_entries"
    __table_args__ = (
        Index("ix_inbox_entries_user_created", "recipient_user", "created_at"),
        Index("ix_inbox_entries_org_created", "recipient_org", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    # A user (the token's ``sub``), or ``None`` for every case worker of ``recipient_org``.
    recipient_user: Mapped[str | None] = mapped_column(String(64))
    recipient_org: Mapped[str] = mapped_column(String(120))
    referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    participant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    reminder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    # The event (or reminder) and recipient it came from: a redelivery adds nothing.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class InboxRead(Base):
    """Who has read an entry (an organisation's entry is read per person)."""

    __tablename__ = "inbox_reads"

    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inbox_entries.id", ondelete="CASCADE"), primary_key=True
    )
    user_sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class StaffMember(Base):
    """A partner's employee as their last token described them, for e-mail copies: the
    address, the organisation and the roles come from the identity provider, never typed in."""

    __tablename__ = "staff_members"

    sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    org_alias: Mapped[str | None] = mapped_column(String(120), index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class EmailPreference(Base):
    """A user's switch for e-mail copies of one kind of entry; no row means on."""

    __tablename__ = "email_preferences"

    user_sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean)


class EmailCopy(ClaimMixin, Base):
    """An inbox entry sent by e-mail to one staff member, exactly once."""

    __tablename__ = "email_copies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inbox_entries.id", ondelete="CASCADE"), index=True
    )
    user_sub: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
