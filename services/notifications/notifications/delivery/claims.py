"""Claiming due messages so that each goes out once, whatever the dispatchers and workers do.

The life of a row (``ClaimMixin``):

    scheduled ──claim──> sending ──hand over──> (message leaves) ──> sent
        ^                   │  └─ temporary failure before or explicit 4xx after ─> scheduled
        └───── lease ran out, nothing handed over ──┘        (retry, same idempotency key)

- **claim**: one short transaction picks due ``scheduled`` rows and marks them ``sending`` with a
  random claim token and a lease. On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``,
  so concurrent dispatchers take disjoint rows; on SQLite every transaction begins ``IMMEDIATE``
  (``buendnis_common.db``), so a claim holds the database's write lock and is exclusive too.
- **hand over**: right before the point of no return (SMTP: after 354, before the message and
  its final dot; SMS: before the request) the worker commits ``handed_over_at`` — a
  compare-and-set on its own claim token, status ``sending`` and a lease with time to spare.
  If it fails (the row was cancelled, or taken back by recovery) nothing is sent.
- **recover**: a ``sending`` row whose lease has run out belongs to a worker that died (a live
  worker always finishes or gives up well within its lease: the lease must exceed twice the
  SMTP/SMS time-outs, checked at start-up, and the hand-over demands that much lease left).
  If it was never handed over, no message can exist: it is scheduled again, same key. If it
  was handed over, the receiver may have it: an e-mail is *not* sent again — it is marked
  ``sent`` with ``confirmed = false``; an SMS is sent again only when the provider honours the
  idempotency key (``SMS_PROVIDER_IDEMPOTENT``), which then answers without sending twice.

What this guarantees at the SMTP boundary, honestly: a message is never sent twice by us. It
is *lost* only if a worker dies in the instant between committing the hand-over and writing the
final dot to the socket (the row then says ``sent``, unconfirmed); if it dies after the dot, the
server has the message and it is not repeated. SMTP cannot do better than that without the
receiving server de-duplicating: the Message-ID is the idempotency key, so one that does (or a
mail program) can.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    token: str


class Claims:
    """Claim, hand over, finish and recover rows of one table with ``ClaimMixin``."""

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

    def mine(self, session: Session, claim: Claim):
        """The claimed row, if it is still this claim's (it may have been cancelled meanwhile)."""
        row = session.get(self.model, claim.id)
        if row is None or row.status != SENDING or row.claim_token != claim.token:
            return None
        return row

    def hand_over(self, claim: Claim, *, now: datetime, delivery: dict[str, Any],
                  **values: Any) -> uuid.UUID | None:
        """Record the point of no return and the delivery attempt; ``None`` if the claim is
        lost or its lease too short to finish in time (then nothing may be sent)."""
        model = self.model
        with self.db.transaction() as session:
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
        model = self.model
        result = session.execute(
            update(model)
            .where(model.id == claim.id, model.claim_token == claim.token,
                   model.status == SENDING)
            .values(status=status, lease_until=None, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            return True
        if status == SENT and values.get("confirmed"):
            # Recovery marked it sent-unconfirmed while we were waiting; the answer came.
            session.execute(
                update(model)
                .where(model.id == claim.id, model.claim_token == claim.token,
                       model.status == SENT)
                .values(confirmed=True, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return False

    def release(self, claim: Claim, *, now: datetime, due_at: datetime, error: str | None,
                **values: Any) -> None:
        """Back to ``scheduled`` (to be tried again at ``due_at``), nothing handed over."""
        with self.db.transaction() as session:
            self.finish(session, claim, now=now, status=SCHEDULED, due_at=due_at,
                        claim_token=None, claimed_by=None, handed_over_at=None,
                        last_error=error, **values)

    def recover(self, *, now: datetime,
                resend_after_hand_over: Callable[[Any], bool]) -> tuple[int, int]:
        """Settle rows of dead workers (lease run out). Returns (scheduled again, marked sent
        unconfirmed)."""
        model = self.model
        requeued = unconfirmed = 0
        with self.db.transaction() as session:
            expired = select(model).where(model.status == SENDING, model.lease_until < now)
            if self.db.is_postgres:
                expired = expired.with_for_update(skip_locked=True)
            for row in session.scalars(expired):
                handed_over = row.handed_over_at is not None
                if handed_over and not resend_after_hand_over(row):
                    row.status = SENT
                    row.sent_at = row.handed_over_at
                    row.confirmed = False
                    row.last_error = "worker_lost_after_hand_over"
                    unconfirmed += 1
                    outcome = UNCONFIRMED
                else:
                    row.status = SCHEDULED
                    row.claim_token = None
                    row.claimed_by = None
                    row.handed_over_at = None
                    row.due_at = now
                    row.last_error = "worker_lost"
                    requeued += 1
                    outcome = "worker_lost"
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


__all__ = ["ACCEPTED", "Claim", "Claims", "HANDED_OVER", "settle_delivery"]
