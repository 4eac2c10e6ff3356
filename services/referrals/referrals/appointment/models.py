from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from referrals.db import Base

# FHIR Appointment codes.
BOOKED = "booked"
CANCELLED = "cancelled"
FULFILLED = "fulfilled"
NOSHOW = "noshow"
STATUSES = (BOOKED, CANCELLED, FULFILLED, NOSHOW)


class Appointment(Base):
    """A meeting on a referral, booked by the sender or the receiver."""

    __tablename__ = "appointments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    mode: Mapped[str] = mapped_column(String(20))
    location: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=BOOKED)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    booked_by_org: Mapped[str] = mapped_column(String(120))
    booked_by: Mapped[str] = mapped_column(String(120))
    # The participant's answer to a reminder (``confirmed``, ``cancel_requested``) and when:
    # by SMS reply or the link in an e-mail reminder. A cancellation request cancels nothing:
    # the receiving organisation decides.
    participant_response: Mapped[str | None] = mapped_column(String(20))
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class AnswerLinkUse(Base):
    """Each answer of an e-mail reminder's link works once: a replay finds its row."""

    __tablename__ = "answer_link_uses"

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True
    )
    response: Mapped[str] = mapped_column(String(20), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
