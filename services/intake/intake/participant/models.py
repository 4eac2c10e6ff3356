from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from buendnis_common.db import UtcDateTime, new_id, utcnow
from buendnis_common.vocabulary import NEED_CATEGORIES, NEED_STATUSES, RESIDENCE_STATUSES
from intake.db import Base

__all__ = ["NEED_CATEGORIES", "NEED_STATUSES", "RESIDENCE_STATUSES", "Need", "Participant"]
GENDERS = ("female", "male", "diverse", "unspecified")
CHANNELS = ("sms", "email", "none")
QUALIFICATIONS = (
    "none",
    "primary",
    "lower_secondary",
    "upper_secondary",
    "vocational",
    "higher",
    "unknown",
)


class Participant(Base):
    """A young person registered by one organisation; only that organisation sees the record."""

    __tablename__ = "participants"
    __table_args__ = (
        Index("ix_participants_owner_created", "owner_org", "created_at"),
        Index("ix_participants_alliance_match", "alliance", "match_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org: Mapped[str] = mapped_column(String(120))
    alliance: Mapped[str | None] = mapped_column(String(120))
    pseudonym: Mapped[str] = mapped_column(String(16), unique=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    residence_status: Mapped[str] = mapped_column(String(32))
    residence_valid_until: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(16))
    nationality: Mapped[str | None] = mapped_column(String(2))
    languages: Mapped[list] = mapped_column(JSON, default=list)
    municipality: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_preferred_channel: Mapped[str | None] = mapped_column(String(8))
    contact_language: Mapped[str | None] = mapped_column(String(2))
    education: Mapped[dict | None] = mapped_column(JSON)
    eligibility_override_reason: Mapped[str | None] = mapped_column(Text)
    # Keyed hash of normalised name and birth date, for the duplicate hint (never the name).
    match_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)

    needs: Mapped[list[Need]] = relationship(
        back_populates="participant", cascade="all, delete-orphan", order_by="Need.created_at"
    )
    consents: Mapped[list[Consent]] = relationship(  # noqa: F821 - defined in consent.models
        back_populates="participant", cascade="all, delete-orphan",
        order_by="Consent.recorded_at",
    )

    @property
    def contact(self) -> dict | None:
        values = {
            "phone": self.contact_phone,
            "email": self.contact_email,
            "preferred_channel": self.contact_preferred_channel,
            "language": self.contact_language,
        }
        return values if any(v is not None for v in values.values()) else None

    @contact.setter
    def contact(self, value: dict | None) -> None:
        value = value or {}
        self.contact_phone = value.get("phone")
        self.contact_email = value.get("email")
        self.contact_preferred_channel = value.get("preferred_channel")
        self.contact_language = value.get("language")


class Need(Base):
    """Something the person needs (a language course, identity clarification …) and how far
    it has got."""

    __tablename__ = "needs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="needs")
