"""What notifications knows about an appointment: the ids, codes and times of referrals' events.

Events may arrive out of order (two workers, a redelivery); each row remembers the time of the
last event applied to it, and an older event changes nothing.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, utcnow
from notifications.db import Base

BOOKED = "booked"
CANCELLED = "cancelled"


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    from_org: Mapped[str] = mapped_column(String(120))
    to_org: Mapped[str] = mapped_column(String(120))
    alliance: Mapped[str | None] = mapped_column(String(120))
    need_category: Mapped[str | None] = mapped_column(String(40))
    sender_user_id: Mapped[str | None] = mapped_column(String(64))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    mode: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    # iCalendar SEQUENCE: 0 when booked, one more for every move and for the cancellation.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def ical_uid(self) -> str:
        """The same for the appointment's whole life, so that calendars move and cancel it."""
        return f"appointment-{self.id}@buendnis"


class ParticipantErasure(Base):
    """A participant erased in intake: nothing is ever sent to them again."""

    __tablename__ = "participant_erasures"

    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_org: Mapped[str] = mapped_column(String(120))
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)
