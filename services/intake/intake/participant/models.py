from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from intake.db import Base

RESIDENCE_STATUSES = (
    "aufenthaltsgestattung",
    "duldung",
    "aufenthaltserlaubnis",
    "niederlassungserlaubnis",
    "other",
    "unknown",
)


class Participant(Base):
    """A young person registered by one organisation; only that organisation sees the record."""

    __tablename__ = "participants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org: Mapped[str] = mapped_column(String(120), index=True)
    alliance: Mapped[str | None] = mapped_column(String(120))
    pseudonym: Mapped[str] = mapped_column(String(16), unique=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    residence_status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
