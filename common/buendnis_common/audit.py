"""Audit entries for every read and write of personal data, written in the same transaction.

An entry says who (user and organisation), what (an action code), which participant, which request
and when — never the data itself.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from flask import g, has_request_context
from sqlalchemy import Index, String, Uuid, insert
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from .db import BigIntPK, UtcDateTime, utcnow


class AuditEntryMixin:
    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "audit_log"

    @declared_attr.directive
    def __table_args__(cls):
        return (
            Index("ix_audit_log_org_at", "actor_org", "at"),
            Index("ix_audit_log_participant", "participant_id"),
        )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    actor_org: Mapped[str | None] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_id: Mapped[str | None] = mapped_column(String(128))


def _context() -> dict:
    principal = getattr(g, "principal", None) if has_request_context() else None
    return {
        "actor": principal.username if principal else "system",
        "actor_org": principal.org_alias if principal else None,
        "request_id": getattr(g, "request_id", None) if has_request_context() else None,
    }


def record_many(session: Session, model: type, action: str,
                participant_ids: list[uuid.UUID | None], *,
                record_ids: list[uuid.UUID | None] | None = None, actor: str | None = None,
                actor_org: str | None = None) -> list[dict]:
    """One entry per participant in one statement (a list read, an import), whatever the
    list's length. ``record_ids``, where given, pairs each participant with the record read
    (a referral, an appointment). Outside a request (an import in the worker) the caller names
    the actor."""
    if not participant_ids:
        return []
    if record_ids is None:
        record_ids = [None] * len(participant_ids)
    context = {**_context(), "at": utcnow(), "action": action}
    if actor:
        context.update(actor=actor, actor_org=actor_org)
    entries = [{**context, "participant_id": pid, "record_id": rid}
               for pid, rid in zip(participant_ids, record_ids, strict=True)]
    session.execute(insert(model), entries)
    return entries


def record(
    session: Session,
    model: type,
    action: str,
    *,
    participant_id: uuid.UUID | None = None,
    record_id: uuid.UUID | None = None,
    actor: str | None = None,
    actor_org: str | None = None,
) -> dict:
    """Append an entry; in a request the actor and request id come from the request.
    Returns the entry's fields, which the caller ships to the audit trail."""
    context = _context()
    entry = {
        "at": utcnow(),
        "actor": actor or context["actor"],
        "actor_org": actor_org or context["actor_org"],
        "action": action,
        "participant_id": participant_id,
        "record_id": record_id,
        "request_id": context["request_id"],
    }
    session.add(model(**entry))
    return entry
