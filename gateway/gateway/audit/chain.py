"""The hash chain: each entry's hash covers its content and the hash of the entry before."""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.models import AuditChainHead, AuditTrailEntry

GENESIS = "0" * 64
HEAD_ID = 1


def entry_hash(*, seq: int, event_id: uuid.UUID, source: str, at: datetime, actor: str,
               actor_org: str | None, action: str, participant_id: uuid.UUID | None,
               record_id: uuid.UUID | None, request_id: str | None, prev_hash: str) -> str:
    canonical = json.dumps(
        {
            "seq": seq, "event_id": str(event_id), "source": source, "at": at.isoformat(),
            "actor": actor, "actor_org": actor_org, "action": action,
            "participant_id": str(participant_id) if participant_id else None,
            "record_id": str(record_id) if record_id else None,
            "request_id": request_id, "prev_hash": prev_hash,
        },
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hash_of(entry: AuditTrailEntry) -> str:
    return entry_hash(
        seq=entry.seq, event_id=entry.event_id, source=entry.source, at=entry.at,
        actor=entry.actor, actor_org=entry.actor_org, action=entry.action,
        participant_id=entry.participant_id, record_id=entry.record_id,
        request_id=entry.request_id, prev_hash=entry.prev_hash,
    )


def append(session: Session, *, event_id: uuid.UUID, source: str, fields: dict) -> AuditTrailEntry:
    """Append one entry at the end of the chain, holding the head row's lock meanwhile."""
    head = session.scalar(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    )
    if head is None:
        head = AuditChainHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
    entry = AuditTrailEntry(
        seq=head.seq + 1, event_id=event_id, source=source,
        at=datetime.fromisoformat(fields["at"]), actor=fields["actor"],
        actor_org=fields.get("actor_org"), action=fields["action"],
        participant_id=uuid.UUID(fields["participant_id"]) if fields.get("participant_id")
        else None,
        record_id=uuid.UUID(fields["record_id"]) if fields.get("record_id") else None,
        request_id=fields.get("request_id"), prev_hash=head.hash,
    )
    entry.hash = _hash_of(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    return entry


@dataclass(frozen=True)
class Verdict:
    intact: bool
    entries: int
    broken_seq: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.intact:
            return f"audit trail intact: {self.entries} entries"
        return f"audit trail broken at entry {self.broken_seq}: {self.reason}"


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditTrailEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditTrailEntry).where(AuditTrailEntry.seq > last)
            .order_by(AuditTrailEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> Verdict:
    """Walk the chain from the start; name the first entry that was changed, or that follows a
    removed one, and notice a removed last entry through the head."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in _entries(session):
        if entry.seq != expected_seq:
            return Verdict(False, count, expected_seq, "this entry is missing")
        if entry.prev_hash != prev_hash:
            return Verdict(False, count, entry.seq,
                           "it does not follow the entry before (that one was changed)")
        if _hash_of(entry) != entry.hash:
            return Verdict(False, count, entry.seq, "its content was changed")
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.seq, head.hash) != (count, prev_hash):
        return Verdict(False, count, count + 1, "entries at the end were removed")
    return Verdict(True, count)
