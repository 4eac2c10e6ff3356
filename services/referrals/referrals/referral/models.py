from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from buendnis_common.db import UtcDateTime, new_id, utcnow
from referrals.db import Base

# FHIR Task codes, as in HL7's closed-loop referral guide.
REQUESTED = "requested"
ACCEPTED = "accepted"
REJECTED = "rejected"
CANCELLED = "cancelled"
IN_PROGRESS = "in-progress"
ON_HOLD = "on-hold"
COMPLETED = "completed"
FAILED = "failed"

STATUSES = (REQUESTED, ACCEPTED, REJECTED, CANCELLED, IN_PROGRESS, ON_HOLD, COMPLETED, FAILED)
CLOSED = frozenset({REJECTED, CANCELLED, COMPLETED, FAILED})

# Why a snapshot of the participant's data is no longer held.
CONSENT_WITHDRAWN = "consent_withdrawn"
CONSENT_EXPIRED = "consent_expired"
PARTICIPANT_ERASED = "participant_erased"


class Referral(Base):
    """One organisation (sender) refers its participant to another (receiver) of the alliance.

    The receiver sees the participant's pseudonym and the snapshot of the categories the
    participant consented to share with it, taken when the referral was made; the snapshot is
    dropped when the consent is withdrawn or expires, or the participant is erased.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_from_org_created", "from_org", "created_at"),
        Index("ix_referrals_to_org_created", "to_org", "created_at"),
        Index("ix_referrals_status_due", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    pseudonym: Mapped[str | None] = mapped_column(String(32))
    from_org: Mapped[str] = mapped_column(String(120))
    to_org: Mapped[str] = mapped_column(String(120))
    alliance: Mapped[str] = mapped_column(String(120), index=True)
    need_category: Mapped[str] = mapped_column(String(40))
    offer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("offers.id"))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    consent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The consent's last valid day, as intake confirmed it after the referral was stored: past
    # it, the snapshot is dropped on the next read even before intake's expiry event arrives.
    consent_valid_until: Mapped[date | None] = mapped_column(Date)
    shared_categories: Mapped[list] = mapped_column(JSON, default=list)
    snapshot: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    snapshot_dropped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    snapshot_dropped_reason: Mapped[str | None] = mapped_column(String(40))
    sender_user: Mapped[str] = mapped_column(String(120))
    sender_user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Response time: the receiver should answer (accept, reject) by due_at.
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The person's record key for the reports' Cell Key Method (report_person_keys), copied
    # here when the referral is made so that a report reads it from its covering index. Never
    # shown: no schema carries it.
    person_key: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    history: Mapped[list[StatusChange]] = relationship(
        back_populates="referral", order_by="StatusChange.seq", cascade="all, delete-orphan",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED

    @property
    def overdue(self) -> bool:
        """Marked overdue and still unanswered."""
        return self.overdue_at is not None and self.status == REQUESTED


class StatusChange(Base):
    """One entry of a referral's history: status, by organisation, by user, at, reason."""

    __tablename__ = "referral_history"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    previous_status: Mapped[str | None] = mapped_column(String(20))
    organization: Mapped[str] = mapped_column(String(120))
    user: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text)

    referral: Mapped[Referral] = relationship(back_populates="history")


class Message(Base):
    """The sender's and receiver's thread on a referral."""

    __tablename__ = "referral_messages"
    __table_args__ = (Index("ix_referral_messages_referral_at", "referral_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("referrals.id", ondelete="CASCADE")
    )
    author_org: Mapped[str] = mapped_column(String(120))
    author: Mapped[str] = mapped_column(String(120))
    # Emptied when the participant is erased; who and when stay.
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WithdrawnConsent(Base):
    """A consent intake reported withdrawn. A referral being made at that very moment under
    this consent is refused, even if intake still called it valid a moment before."""

    __tablename__ = "withdrawn_consents"

    consent_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    recipient_org: Mapped[str] = mapped_column(String(120))
    withdrawn_at: Mapped[datetime] = mapped_column(UtcDateTime)
