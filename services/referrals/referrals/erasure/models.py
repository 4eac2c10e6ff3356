from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime
from referrals.db import Base


class ParticipantErasure(Base):
    """A participant erased in intake (Art. 17): referrals drop what they hold about them and
    refuse new referrals for them."""

    __tablename__ = "participant_erasures"

    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_org: Mapped[str] = mapped_column(String(120))
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
