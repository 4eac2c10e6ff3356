"""The audit trail's chain, sealed with a key the database never holds.

Each entry's seal is an HMAC-SHA256 (key ``AUDIT_CHAIN_KEY``) over its content and the seal of
the entry before. Whoever can write to the database — even its owner, who can drop the triggers
or empty the table — cannot write a seal that verifies, so changing, inserting or rewriting
entries (the whole chain recomputed with plain hashes) is noticed by ``verify``.

What a key cannot show is entries removed at the end, or all of them (TRUNCATE): what is left
is still a valid chain. So the chain's end is written down outside the database: a periodic task
appends checkpoints (sequence number, seal, time), each sealed with the same key, to a file in
``AUDIT_CHECKPOINT_DIR``, and ``verify`` checks the chain against every checkpoint: a trail that
is shorter than a checkpoint, or differs from one, is broken. The running gateway's database
role (on PostgreSQL) may only insert and read entries; see ``gateway.models.RUNTIME_GRANTS``.

Appends are serialised by a transaction-scoped advisory lock on PostgreSQL (no row to update,
so the running role needs no UPDATE right at all) and by SQLite's single writer.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from buendnis_common.db import utcnow
from buendnis_common.settings import env_list, env_secret, env_str
from buendnis_common.signing import KEY_MIN_LENGTH, Keyring, canonical_json
from gateway.audit.models import AuditTrailEntry

log = logging.getLogger(__name__)

GENESIS = "0" * 64
DEMO_AUDIT_CHAIN_KEY = "demo-audit-chain-key-change-me-please"
CHECKPOINT_FILE = "checkpoints.jsonl"
# Any fixed number: the one advisory lock that serialises appends on PostgreSQL.
APPEND_LOCK = 0x6275656E64


def chain_keys() -> Keyring:
    """``AUDIT_CHAIN_KEY`` seals; ``AUDIT_CHAIN_KEYS_OLD`` (comma-separated) still verify.
    Outside development a demo or unset key stops the process."""
    return Keyring(
        env_secret("AUDIT_CHAIN_KEY", DEMO_AUDIT_CHAIN_KEY, min_length=KEY_MIN_LENGTH),
        env_list("AUDIT_CHAIN_KEYS_OLD"),
    )


def checkpoint_dir() -> Path:
    """``AUDIT_CHECKPOINT_DIR``: where the checkpoints go, outside the database."""
    default = Path(env_str("BUENDNIS_VAR", "var")) / "audit-checkpoints"
    return Path(env_str("AUDIT_CHECKPOINT_DIR", str(default)))


def _content(entry: AuditTrailEntry) -> bytes:
    return canonical_json({
        "seq": entry.seq, "event_id": str(entry.event_id), "source": entry.source,
        "at": entry.at.isoformat(), "actor": entry.actor, "actor_org": entry.actor_org,
        "action": entry.action,
        "participant_id": str(entry.participant_id) if entry.participant_id else None,
        "record_id": str(entry.record_id) if entry.record_id else None,
        "request_id": entry.request_id, "prev_hash": entry.prev_hash,
    })


def seal(entry: AuditTrailEntry, keys: Keyring) -> str:
    return keys.mac(_content(entry))


def _sealed(entry: AuditTrailEntry, keys: Keyring) -> bool:
    """Sealed with the current key or one of the old ones (after a rotation)."""
    content = _content(entry)
    return any(keys.verify(kid, content, entry.hash) for kid in keys.key_ids())


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})


def tail(session: Session) -> tuple[int, str]:
    """The newest entry's sequence number and seal (0 and the genesis value when empty)."""
    last = session.execute(
        select(AuditTrailEntry.seq, AuditTrailEntry.hash)
        .order_by(AuditTrailEntry.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def _uuid(value) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def append_many(session: Session, items: Iterable[tuple[uuid.UUID, str, dict]], *,
                keys: Keyring | None = None) -> list[AuditTrailEntry]:
    """Append ``(event_id, source, fields)`` entries at the end of the chain, in order."""
    keys = keys or chain_keys()
    _lock(session)
    seq, prev = tail(session)
    entries = []
    for event_id, source, fields in items:
        seq += 1
        entry = AuditTrailEntry(
            seq=seq, event_id=event_id, source=source,
            at=datetime.fromisoformat(fields["at"]), actor=fields["actor"],
            actor_org=fields.get("actor_org"), action=fields["action"],
            participant_id=_uuid(fields.get("participant_id")),
            record_id=_uuid(fields.get("record_id")),
            request_id=fields.get("request_id"), prev_hash=prev,
        )
        entry.hash = prev = seal(entry, keys)
        entries.append(entry)
    session.add_all(entries)
    return entries


def append(session: Session, *, event_id: uuid.UUID, source: str, fields: dict,
           keys: Keyring | None = None) -> AuditTrailEntry:
    return append_many(session, [(event_id, source, fields)], keys=keys)[0]


# -- checkpoints ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str


def _checkpoint_lines(directory: Path) -> list[str]:
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class CheckpointError(ValueError):
    """The checkpoint file was changed: a line does not carry a valid seal."""


def read_checkpoints(directory: Path, keys: Keyring) -> list[Checkpoint]:
    checkpoints = []
    for number, line in enumerate(_checkpoint_lines(directory), start=1):
        try:
            record = json.loads(line)
            body = {key: record[key] for key in ("seq", "hash", "at", "kid")}
            valid = keys.verify(body["kid"], canonical_json(body), record["mac"])
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise CheckpointError(f"checkpoint {number} in {directory / CHECKPOINT_FILE} does "
                                  "not verify (the file was changed, or the key is wrong)")
        checkpoints.append(Checkpoint(int(body["seq"]), body["hash"], body["at"]))
    return checkpoints


def write_checkpoint(session: Session, directory: Path, *, keys: Keyring | None = None,
                     now: datetime | None = None) -> Checkpoint | None:
    """Append the chain's end to the checkpoint file if it moved since the last checkpoint.
    Never a checkpoint of a trail shorter than the last one: that is logged as an alarm."""
    keys = keys or chain_keys()
    seq, hash_ = tail(session)
    lines = _checkpoint_lines(directory)
    last = json.loads(lines[-1]) if lines else None
    if last is not None and seq < int(last.get("seq", 0)):
        log.error("audit trail ends at entry %d, before its last checkpoint (entry %s): entries "
                  "were removed; no checkpoint written", seq, last.get("seq"))
        return None
    if seq == 0 or (last is not None and (last.get("seq"), last.get("hash")) == (seq, hash_)):
        return None
    body = {"seq": seq, "hash": hash_, "at": (now or utcnow()).isoformat(),
            "kid": keys.current_id}
    line = json.dumps({**body, "mac": keys.mac(canonical_json(body))}, sort_keys=True) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                         0o640)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return Checkpoint(seq, hash_, body["at"])


# -- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    intact: bool
    entries: int
    broken_seq: int | None = None
    reason: str = ""
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def __str__(self) -> str:
        if self.intact:
            if not self.checkpoints:
                return f"audit trail intact: {self.entries} entries; no checkpoint yet"
            last = self.checkpoints[-1]
            return (f"audit trail intact: {self.entries} entries; agrees with "
                    f"{len(self.checkpoints)} checkpoint(s), the last at entry {last.seq} "
                    f"({last.at})")
        if self.broken_seq is None:
            return f"audit trail broken: {self.reason}"
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


def verify(session: Session, *, keys: Keyring | None = None,
           directory: Path | None = None) -> Verdict:
    """Walk the chain from the start; name the first entry that was changed, or that follows a
    removed one; then hold the chain against every checkpoint, so that a trail cut short,
    emptied or rewritten is noticed too."""
    keys = keys or chain_keys()
    try:
        checkpoints = read_checkpoints(directory or checkpoint_dir(), keys)
    except CheckpointError as exc:
        return Verdict(False, 0, None, str(exc))
    expected = {checkpoint.seq: checkpoint for checkpoint in checkpoints}
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in _entries(session):
        if entry.seq != expected_seq:
            return Verdict(False, count, expected_seq, "this entry is missing")
        if entry.prev_hash != prev_hash:
            return Verdict(False, count, entry.seq,
                           "it does not follow the entry before (that one was changed)")
        if not _sealed(entry, keys):
            return Verdict(False, count, entry.seq,
                           "its content was changed (its seal does not verify)")
        checkpoint = expected.get(entry.seq)
        if checkpoint is not None and checkpoint.hash != entry.hash:
            return Verdict(False, count, entry.seq,
                           f"it differs from the checkpoint of {checkpoint.at} (the trail was "
                           "rewritten)")
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    beyond = [checkpoint for checkpoint in checkpoints if checkpoint.seq > count]
    if beyond:
        return Verdict(False, count, count + 1,
                       f"the trail ends at entry {count}, but the checkpoint of {beyond[-1].at} "
                       f"saw entry {beyond[-1].seq}: entries were removed")
    return Verdict(True, count, checkpoints=checkpoints)
