"""An import that runs in the worker: its file until it is processed, then its progress and report.

The file is the only personal data here and it is deleted (``content`` set to NULL) in the same
transaction that imports its rows or records the refusal. The report holds row numbers, ids,
pseudonyms and the validation messages — no names, no contact data.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from buendnis_common.db import UtcDateTime, new_id, utcnow
from intake.db import Base

STATUSES = ("queued", "checking", "importing", "done", "failed")
FINISHED = ("done", "failed")


class ParticipantImport(Base):
    """One uploaded list of one organisation; only that organisation sees it."""

    __tablename__ = "participant_imports"
    __table_args__ = (Index("ix_participant_imports_owner_created", "owner_org", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_org: Mapped[str] = mapped_column(String(120))
    alliance: Mapped[str | None] = mapped_column(String(120))
    # The case worker who sent it: the actor of the audit entries the worker writes.
    created_by: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(8))  # csv or xlsx; never the file's name
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    message: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[dict | None] = mapped_column(JSON)  # as a 422 body's errors
    report: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
