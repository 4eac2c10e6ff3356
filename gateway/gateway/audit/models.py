from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import BigIntPK, UtcDateTime
from gateway.db import Base


class AuditTrailEntry(Base):
    """One audit entry of any service, chained to the one before by its keyed seal (``hash``,
    see ``gateway.audit.chain``). Rows are only ever inserted: database triggers refuse UPDATE
    and DELETE, and on PostgreSQL the running gateway's role may only INSERT and SELECT."""

    __tablename__ = "audit_trail"
    __table_args__ = (
        Index("ix_audit_trail_org_at", "actor_org", "at"),
        Index("ix_audit_trail_participant", "participant_id"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    source: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    actor_org: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_id: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
