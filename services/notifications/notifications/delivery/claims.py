"""Claiming due messages so that each goes out once, whatever the dispatchers and workers do.

The life of a row (``ClaimMixin``):

    scheduled ──claim──> sending ──hand over──> (message leaves) ──> sent
        ^                   │  └─ temporary failure before or explicit 4xx after ─> scheduled
        └── claimer dead or stopping, nothing handed over ──┘  (same key, not counted as a try)

- **claim**: one short transaction picks due ``scheduled`` rows and marks them ``sending`` with a
  random claim token, the claimer's identity (``ProcessIdentity``) and a short lease. On
  PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers take
  disjoint rows; on SQLite every transaction begins ``IMMEDIATE`` (``buendnis_common.db``), so
  a claim holds the database's write lock and is exclusive too.
- **heartbeat**: while a dispatcher runs, a thread of it renews the lease of its claims every
  third of the lease (``renew``). A live worker's claims never run out; a dead worker's run out
  within one lease (``REMINDER_LEASE_SECONDS``, 15 s by default).
- **hand over**: right before the point of no return (SMTP: after 354, before the message and
  its final dot; SMS: before the request) the worker commits ``handed_over_at`` — a
  compare-and-set on its own claim token, status ``sending`` and a lease not about to run out.
  If it fails (the row was cancelled, or taken back by recovery) nothing is sent.
- **recover**: a ``sending`` row whose claimer is dead is settled by any dispatcher: one whose
  lease ran out (its heartbeat stopped), or — at once, without waiting for the lease — one
  claimed by a process of this machine that no longer runs (a restarted worker takes back its
  predecessor's claims on its first run). If it was never handed over, no message can exist:
  it is scheduled again, same key, and the try is not counted. If it was handed over, the
  receiver may have it: an SMS is sent again only when the provider honours the idempotency key
  (``SMS_PROVIDER_IDEMPOTENT``), which then answers without sending twice; an e-mail is *not*
  sent again — it is marked ``sent`` with ``confirmed = false`` and reported (``on_unconfirmed``:
  the case worker's inbox says it may not have arrived).
- **give back**: a worker told to stop (SIGTERM) hands its unsent claims back at once
  (``give_back``), so that the next worker need not wait for the lease.

What this guarantees at the SMTP boundary, honestly: a message is never sent twice by us. It
is uncertain only if a worker dies between writing the message's first byte and reading the
server's answer to its final dot — one message per sending thread at most; such a message is
reported, never silently lost. SMTP cannot do better without the receiving server
de-duplicating: the Message-ID is the idempotency key, so one that does (or a mail program) can.
"""
from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from buendnis_common.db import Database
from notifications.delivery.models import (
    ACCEPTED,
    SCHEDULED,
    SENDING,
    SENT,
    UNCONFIRMED,
    Delivery,
)

HANDED_OVER = "handed_over"
WORKER_LOST = "worker_lost"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), ``None`` if there is none."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.rsplit(")", 1)[-1].split()[19]


@lru_cache(maxsize=1)
def _machine() -> str:
    """This kernel and PID namespace: the processes whose ids mean the same as ours."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""
    boot = _read("/proc/sys/kernel/random/boot_id")
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:10] if boot else ""


@dataclass(frozen=True)
class ProcessIdentity:
    """Who holds a claim: host name, process id, machine (kernel and PID namespace) and the
    process's start time — one identity per process start, so that a restarted worker with the
    same host name (and, in a container, the same process id) is not taken for its
    predecessor. Written as ``host:pid:machine:start`` into ``claimed_by``."""

    host: str
    pid: int
    machine: str
    start: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname()[:60].replace(":", "-"), pid, _machine(),
                   _start_ticks(pid) or uuid.uuid4().hex[:12])

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.machine}:{self.start}"

    @classmethod
    def parse(cls, text: str | None) -> ProcessIdentity | None:
        parts = (text or "").rsplit(":", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])

    def surely_dead(self) -> bool:
        """True only when this process is known not to run any more: it ran on this machine
        (same kernel and PID namespace) and no process with its id and start time exists.
        Elsewhere, or when unsure, the lease decides."""
        if not self.machine or self.machine != _machine():
            return False
        return _start_ticks(self.pid) != self.start


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    token: str


class Claims:
    """Claim, renew, hand over, finish, give back and recover rows of one table with
    ``ClaimMixin``."""

    def __init__(self, *, db: Database, model: type, lease: timedelta,
                 margin: timedelta, worker: str) -> None:
        self.db = db
        self.model = model
        self.lease = lease
        self.margin = margin
        self.worker = worker[:120]

    def claim(self, *, now: datetime, limit: int) -> list[Claim]:
        model = self.model
        with self.db.transaction() as session:
            query = (
                select(model.id)
                .where(model.status == SCHEDULED, model.due_at <= now)
                .order_by(model.due_at)
                .limit(limit)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                return []
            token = uuid.uuid4().hex
            session.execute(
                update(model)
                .where(model.id.in_(ids), model.status == SCHEDULED)
                .values(status=SENDING, claim_token=token, claimed_by=self.worker,
                        lease_until=now + self.lease, handed_over_at=None,
                        attempts=model.attempts + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return [Claim(row_id, token) for row_id in ids]

    def renew(self, tokens: Iterable[str], *, now: datetime) -> int:
        """The heartbeat: extend the lease of the rows still held under ``tokens``."""
        tokens = list(tokens)
        if not tokens:
            return 0
        model = self.model
        with self.db.transaction() as session:
            result = session.execute(
                update(model)
                .where(model.claim_token.in_(tokens), model.status == SENDING)
                .values(lease_until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
        return result.rowcount

    def mine(self, session: Session, claim: Claim):
        """The claimed row, if it is still this claim's (it may have been cancelled meanwhile)."""
        row = session.get(self.model, claim.id)
        if row is None or row.status != SENDING or row.claim_token != claim.token:
            return None
        return row

    def hand_over(self, claim: Claim, *, now: datetime, delivery: dict[str, Any],
                  also: Callable[[Session], None] | None = None,
                  **values: Any) -> uuid.UUID | None:
        """Record the point of no return and the delivery attempt; ``None`` if the claim is
        lost or its lease about to run out (then nothing may be sent). ``also`` writes in the
        same transaction, whatever the outcome (the previous message's settlement on the
        same connection: one commit per message)."""
        model = self.model
        with self.db.transaction() as session:
            if also is not None:
                also(session)
            result = session.execute(
                update(model)
                .where(model.id == claim.id, model.claim_token == claim.token,
                       model.status == SENDING, model.handed_over_at.is_(None),
                       model.lease_until > now + self.margin)
                .values(handed_over_at=now, updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                return None
            record = Delivery(id=uuid.uuid4(), outcome=HANDED_OVER, at=now, **delivery)
            session.add(record)
        return record.id

    def finish(self, session: Session, claim: Claim, *, now: datetime, status: str,
               **values: Any) -> bool:
        """Settle a claimed row in ``session``'s transaction; ``False`` if it is not ours."""
        if claim.id in self.finish_many(session, [claim], now=now, status=status, **values):
            return True
        if status == SENT and values.get("confirmed"):
            # Recovery marked it sent-unconfirmed while we were waiting; the answer came.
            model = self.model
            session.execute(
                update(model)
                .where(model.id == claim.id, model.claim_token == claim.token,
                       model.status == SENT)
                .values(confirmed=True, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return False

    def finish_many(self, session: Session, claims: list[Claim], *, now: datetime,
                    status: str, **values: Any) -> set[uuid.UUID]:
        """``finish`` for many claims, one statement per claim token; the ids that were ours
        (a row cancelled or taken back meanwhile is left as it is)."""
        model = self.model
        tokens: dict[str, list[uuid.UUID]] = {}
        for claim in claims:
            tokens.setdefault(claim.token, []).append(claim.id)
        settled: set[uuid.UUID] = set()
        for token, ids in tokens.items():
            settled.update(session.scalars(
                update(model)
                .where(model.id.in_(ids), model.claim_token == token, model.status == SENDING)
                .values(status=status, lease_until=None, updated_at=now, **values)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            ))
        return settled

    def release(self, claim: Claim, *, now: datetime, due_at: datetime, error: str | None,
                **values: Any) -> None:
        """Back to ``scheduled`` (to be tried again at ``due_at``), nothing handed over."""
        with self.db.transaction() as session:
            self.finish(session, claim, now=now, status=SCHEDULED, due_at=due_at,
                        claim_token=None, claimed_by=None, handed_over_at=None,
                        last_error=error, **values)

    def give_back(self, claim: Claim, *, now: datetime) -> bool:
        """Back to ``scheduled`` as it was, due at once, the try not counted: the worker stops
        before it handed the message over."""
        model = self.model
        with self.db.transaction() as session:
            result = session.execute(
                update(model)
                .where(model.id == claim.id, model.claim_token == claim.token,
                       model.status == SENDING, model.handed_over_at.is_(None))
                .values(status=SCHEDULED, claim_token=None, claimed_by=None, lease_until=None,
                        attempts=model.attempts - 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return result.rowcount == 1

    def _abandoned(self, now: datetime) -> list[uuid.UUID]:
        """``sending`` rows whose claimer is dead: lease run out, or a process of this machine
        that no longer runs."""
        model = self.model
        with self.db.transaction() as session:
            rows = session.execute(
                select(model.id, model.claimed_by, model.lease_until)
                .where(model.status == SENDING)
            ).all()
        dead: dict[str | None, bool] = {}
        found = []
        for row_id, claimer, lease_until in rows:
            if claimer not in dead:
                identity = ProcessIdentity.parse(claimer)
                dead[claimer] = identity is not None and identity.surely_dead()
            if dead[claimer] or lease_until is None or lease_until < now:
                found.append(row_id)
        return found

    def recover(self, *, now: datetime, resend_after_hand_over: Callable[[Any], bool],
                on_unconfirmed: Callable[[Session, Any], None] | None = None,
                ) -> tuple[int, int]:
        """Settle rows of dead workers. Returns (scheduled again, marked sent unconfirmed)."""
        candidates = self._abandoned(now)
        if not candidates:
            return 0, 0
        model = self.model
        requeued = unconfirmed = 0
        with self.db.transaction() as session:
            rows = select(model).where(model.id.in_(candidates), model.status == SENDING)
            if self.db.is_postgres:
                rows = rows.with_for_update(skip_locked=True)
            for row in session.scalars(rows):
                handed_over = row.handed_over_at is not None
                if handed_over and not resend_after_hand_over(row):
                    row.status = SENT
                    row.sent_at = row.handed_over_at
                    row.confirmed = False
                    row.last_error = "worker_lost_after_hand_over"
                    unconfirmed += 1
                    outcome = UNCONFIRMED
                    if on_unconfirmed is not None:
                        on_unconfirmed(session, row)
                else:
                    # Nothing left us, or the receiver de-duplicates by the key: again, and
                    # the interrupted try does not count.
                    row.status = SCHEDULED
                    row.claim_token = None
                    row.claimed_by = None
                    row.handed_over_at = None
                    row.due_at = min(row.due_at, now)
                    row.attempts = max(0, row.attempts - 1)
                    requeued += 1
                    outcome = WORKER_LOST
                row.lease_until = None
                row.updated_at = now
                if handed_over:
                    session.execute(
                        update(Delivery)
                        .where(Delivery.idempotency_key == row.idempotency_key,
                               Delivery.outcome == HANDED_OVER)
                        .values(outcome=outcome)
                        .execution_options(synchronize_session=False)
                    )
        return requeued, unconfirmed


def settle_delivery(session: Session, delivery_id: uuid.UUID | None, *, outcome: str,
                    error: str | None = None) -> None:
    if delivery_id is None:
        return
    session.execute(
        update(Delivery).where(Delivery.id == delivery_id)
        .values(outcome=outcome, error=error)
        .execution_options(synchronize_session=False)
    )


__all__ = ["ACCEPTED", "Claim", "Claims", "HANDED_OVER", "ProcessIdentity", "WORKER_LOST",
           "settle_delivery"]
