from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from buendnis_common.db import UtcDateTime, new_id
from buendnis_common.vocabulary import DATA_CATEGORIES
from intake.db import Base
from intake.participant.models import Participant

__all__ = ["DATA_CATEGORIES", "PURPOSES", "Consent"]

PURPOSES = ("referral",)


class Consent(Base):
    """The participant's consent to share some categories of their data with one organisation."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    recipient_org: Mapped[str] = mapped_column(String(120))
    data_categories: Mapped[list] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(32))
    valid_until: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_by_org: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(120))
    # When intake found the consent past ``valid_until`` and told the other services
    # (``consent.expired``): each expiry is reported once.
    expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    participant: Mapped[Participant] = relationship(back_populates="consents")

    def is_valid(self, today: date) -> bool:
        """Not withdrawn, and not past its last valid day."""
        return self.withdrawn_at is None and self.valid_until >= today

    def ended(self, today: date) -> str | None:
        """Why the consent no longer holds (``withdrawn``, ``expired``), or ``None``."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        if self.valid_until < today:
            return "expired"
        return None
