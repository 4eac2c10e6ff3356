"""Domain events between services: outbox, relay, idempotent consumers.

A service that changes state calls ``emit`` in the same session (so the event is committed with the
change or not at all). After the commit the relay publishes pending rows to the queues of the
services that subscribe to that event type, and a periodic sweep publishes whatever an earlier try
could not (Redis down, process killed). A row may therefore be published more than once; the
consumer records each event id it has handled in the same transaction as the handler's work and
skips an id it has seen, so that every event takes effect exactly once.

Delivery is confirmed end to end. A broker that accepted a message may still lose it: kombu's
Redis transport pops a message (BRPOP) and only then, in a second round trip, writes it to its
``unacked`` hash, so Redis or the worker killed between the two loses it for good, and no Redis
setting closes that window. So a row counts as delivered only once every subscribing service has
recorded the event: after its transaction committed, a consumer adds ``"<event id>:<service>"``
to the Redis set of the event's source (``Confirmations``, one ``SADD`` per batch and source; ids
only, signed with the event key so that whoever only reaches Redis cannot confirm an event that
was lost) for each event it handled, skipped as a duplicate or ignored, never for one that failed. A
confirmation that cannot be written is logged and dropped, never undoes the handling: the event
comes again and is confirmed then. The producer's sweep (``Outbox.relay_all``) pops the
confirmations (``SPOP``), notes on each row who confirmed (``confirmed_by``) and sets
``confirmed_at`` once every subscriber has (an event without subscribers is confirmed when it is
published). A row published but not confirmed by ``confirm_due_at`` — ``EVENT_CONFIRM_SECONDS``
(120) after the publish, doubling with each re-publish up to an hour, so that a consumer down for
hours does not find its queue flooded — is published again, to the queues that have not confirmed
only, and not to a queue that still holds messages (a burst its consumer is still working
through would otherwise be sent twice) unless the event is more than an hour old. Everything
lost on the way (the message, the confirmation, the sweep's pop) thus ends in one more delivery,
which the consumer's dedupe absorbs. An event whose handler fails is not confirmed and so comes
again, hourly at most. An in-process publisher (``Outbox.publisher`` set by tests) delivers as it
publishes: its rows are confirmed when published.

Events carry ids, codes and times only. ``CATALOGUE`` is the one place that says which fields an
event type may carry and which services receive it; ``emit`` refuses anything else.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, String, Uuid, case, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from .db import BigIntPK, Database, UtcDateTime, utcnow
from .settings import env_int
from .signing import REFUSED_COUNTER, Keyring
from .tracing import current_traceparent

log = logging.getLogger(__name__)
security_log = logging.getLogger("buendnis.security")

EVENT_TASK = "buendnis.event"
# One message holding a list of signed envelopes, in the order of the outbox: what the relay
# sends. ``EVENT_TASK`` (one envelope) is still received, one by one.
EVENTS_TASK = "buendnis.events"
TRACEPARENT = "traceparent"


def event_confirm_seconds() -> int:
    """``EVENT_CONFIRM_SECONDS`` (120): how long a published event may wait for its subscribers'
    confirmations before it is published again (doubled with each re-publish, up to
    ``CONFIRM_MAX_SECONDS``). Longer than a busy consumer's backlog takes, or every event of a
    burst would be sent twice."""
    return max(1, env_int("EVENT_CONFIRM_SECONDS", 120))


CONFIRM_MAX_SECONDS = 3600


def event_batch_size() -> int:
    """``EVENT_BATCH_SIZE`` (100): events per message from the relay, and so per transaction in
    the consumer. Larger batches save little once the per-message and per-commit costs are
    shared by 100; smaller ones bound what a failure sends back to one-by-one handling."""
    return max(1, env_int("EVENT_BATCH_SIZE", 100))


@dataclass(frozen=True)
class EventType:
    fields: frozenset[str]
    subscribers: tuple[str, ...]


def _event(fields: Iterable[str], subscribers: Iterable[str]) -> EventType:
    return EventType(frozenset(fields), tuple(subscribers))


_PARTICIPANT = ["participant_id", "owner_org", "alliance"]
_REFERRAL = ["referral_id", "participant_id", "from_org", "to_org", "alliance",
             "need_category", "sender_user_id"]
_APPOINTMENT = [*_REFERRAL, "appointment_id", "start", "end", "mode", "status"]

CATALOGUE: dict[str, EventType] = {
    # intake
    "participant.registered": _event(_PARTICIPANT, []),
    "participant.updated": _event(_PARTICIPANT, []),
    "participant.erased": _event(_PARTICIPANT, ["referrals", "notifications"]),
    "need.changed": _event(
        [*_PARTICIPANT, "need_id", "category", "status", "previous_status"], ["referrals"]
    ),
    "consent.granted": _event(
        [*_PARTICIPANT, "consent_id", "recipient_org", "valid_until"], ["referrals"]
    ),
    "consent.withdrawn": _event([*_PARTICIPANT, "consent_id", "recipient_org"], ["referrals"]),
    # found past its last valid day by intake's expiry sweep; ends sharing as a withdrawal does
    "consent.expired": _event(
        [*_PARTICIPANT, "consent_id", "recipient_org", "valid_until"], ["referrals"]
    ),
    # referrals
    "referral.requested": _event(_REFERRAL, ["notifications"]),
    "referral.status_changed": _event(
        [*_REFERRAL, "status", "previous_status", "changed_by_org"], ["notifications"]
    ),
    "referral.overdue": _event([*_REFERRAL, "due_at"], ["notifications"]),
    # the receiver no longer sees the shared data: reason consent_withdrawn or consent_expired
    "referral.snapshot_dropped": _event([*_REFERRAL, "reason"], ["notifications"]),
    "referral.message_posted": _event([*_REFERRAL, "message_id", "author_org"],
                                      ["notifications"]),
    "appointment.booked": _event(_APPOINTMENT, ["notifications"]),
    "appointment.rescheduled": _event([*_APPOINTMENT, "previous_start"], ["notifications"]),
    "appointment.cancelled": _event(_APPOINTMENT, ["notifications"]),
    "appointment.attended": _event(_APPOINTMENT, ["notifications"]),
    # the participant answered a reminder (confirmed or cancel_requested; channel sms or link):
    # recorded on the appointment, then both case workers are told
    "appointment.participant_responded": _event(
        [*_APPOINTMENT, "response", "responded_at", "channel"], ["notifications"]
    ),
    # notifications: an SMS reply that answers an appointment, for referrals to record
    "answer.received": _event(
        ["appointment_id", "response", "responded_at", "channel"], ["referrals"]
    ),
    # every service: its audit entries, for the gateway's hash-chained audit trail
    "audit.recorded": _event(
        ["at", "actor", "actor_org", "action", "participant_id", "participant_ids", "record_id",
         "record_ids", "request_id"],
        ["gateway"],
    ),
}

# A value in an event is an id, a code or a time: no free text about a person.
_CODE = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")


class EventError(ValueError):
    """An event that would break the catalogue: unknown type, unknown field, or free text."""


def _plain(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError(f"{name}: times in events carry their offset")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _CODE.match(value):
        return value
    if isinstance(value, list | tuple):
        return [_plain(name, item) for item in value]
    raise EventError(f"{name}: events carry ids, codes and times only")


def envelope_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    spec = CATALOGUE.get(event_type)
    if spec is None:
        raise EventError(f"unknown event type {event_type!r}; add it to CATALOGUE")
    unknown = set(data) - spec.fields
    if unknown:
        raise EventError(f"{event_type} may not carry {sorted(unknown)}")
    return {key: _plain(key, value) for key, value in data.items()}


class OutboxMixin:
    """Events waiting to be published, written in the transaction of the change."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "outbox"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(120))
    # Delivery confirmed by every subscriber (module docstring); ``confirmed_by`` the subscribers
    # that have, comma-separated; ``confirm_due_at`` when an unconfirmed row is published again
    # (NULL once confirmed); ``republished`` how often it was.
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    confirm_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    republished: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def envelope(self) -> dict[str, Any]:
        data = dict(self.data or {})
        # The trace of the change that emitted the event (buendnis_common.tracing) travels
        # beside the data, inside what the signature covers.
        traceparent = data.pop(TRACEPARENT, None)
        envelope = {
            "id": str(self.event_id),
            "type": self.type,
            "source": self.source,
            "occurred_at": self.occurred_at.isoformat(),
            "data": data,
        }
        if traceparent:
            envelope[TRACEPARENT] = traceparent
        return envelope


class ProcessedEventMixin:
    """Ids of events this service has handled: the consumer's memory against redelivery."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    type: str
    source: str
    occurred_at: datetime
    data: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event:
        return cls(
            id=uuid.UUID(envelope["id"]),
            type=envelope["type"],
            source=envelope.get("source", ""),
            occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
            data=dict(envelope.get("data") or {}),
        )


Publisher = Callable[[dict[str, Any], str], None]
# Opens one connection to the broker and yields ``send(envelopes, queue)``, which puts a list of
# envelopes into the queue as one message (one round trip), or raises.
BatchSend = Callable[[list[dict[str, Any]], str], None]
BatchPublisher = Callable[[], AbstractContextManager[BatchSend]]


class Confirmations:
    """The consumers' confirmations on their way to the producers, in Redis: per producing
    service a set ``buendnis:event_confirmations:<source>`` of
    ``"<event id>:<service>:<key id>:<mac>"`` (ids and service names only). ``client`` returns
    a ``redis.Redis``.

    Each confirmation is signed with the deployment's event key (``keys``, the ``EVENT_SIGNING_KEY``
    keyring), over the producer, the event and the confirming service: whoever can write to Redis
    but holds no key cannot mark an event delivered that was not (a forged confirmation would
    otherwise stop a lost event from ever coming back). One without a valid signature is
    dropped, logged on ``buendnis.security`` and counted with the refused events."""

    PREFIX = "buendnis:event_confirmations:"
    REFUSED = "forged_confirmation"

    def __init__(self, client: Callable[[], Any], keys: Keyring) -> None:
        self._client = client
        self._keys = keys

    @classmethod
    def from_url(cls, url: str, keys: Keyring) -> Confirmations:
        """One client, made at first use, that fails at once when Redis is away (no retries
        with backoff: a consumer must not wait on a confirmation)."""
        clients: list[Any] = []

        def client():
            if not clients:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                clients.append(redis.Redis.from_url(url, socket_timeout=2,
                                                    socket_connect_timeout=2,
                                                    retry=Retry(NoBackoff(), 0)))
            return clients[0]

        return cls(client, keys)

    def key(self, source: str) -> str:
        return f"{self.PREFIX}{source}"

    @staticmethod
    def _signed_part(source: str, event_id: str, consumer: str) -> bytes:
        return f"buendnis event confirmation\x00{source}:{event_id}:{consumer}".encode()

    def member(self, source: str, event_id: uuid.UUID | str, consumer: str) -> str:
        """The signed confirmation of ``event_id`` (produced by ``source``) by ``consumer``."""
        mac = self._keys.mac(self._signed_part(source, str(event_id), consumer))
        return f"{event_id}:{consumer}:{self._keys.current_id}:{mac}"

    def confirm(self, consumer: str, events: Iterable[Event]) -> None:
        """One ``SADD`` per producing source, in one round trip; raises if Redis does."""
        by_source: dict[str, list[str]] = {}
        for event in events:
            if event.source:
                by_source.setdefault(event.source, []).append(
                    self.member(event.source, event.id, consumer))
        if not by_source:
            return
        pipeline = self._client().pipeline(transaction=False)
        for source, members in by_source.items():
            pipeline.sadd(self.key(source), *members)
        pipeline.execute()

    def busy(self, queues: Iterable[str]) -> set[str]:
        """The queues that hold messages now (``LLEN``, one round trip)."""
        queues = sorted(set(queues))
        pipeline = self._client().pipeline(transaction=False)
        for queue in queues:
            pipeline.llen(queue)
        return {queue for queue, length in zip(queues, pipeline.execute(), strict=True)
                if length}

    def take(self, source: str, count: int) -> list[tuple[uuid.UUID, str]]:
        """Up to ``count`` confirmations of ``source``'s events, removed as they are read
        (``SPOP``: a second reader never gets the same ones)."""
        taken, refused = [], 0
        client = self._client()
        for member in client.spop(self.key(source), count) or []:
            confirmation = self._verified(source, member)
            if confirmation is None:
                refused += 1
            else:
                taken.append(confirmation)
        if refused:
            security_log.warning("%d event confirmations for %s refused: not signed with a key "
                                 "of this deployment; dropped", refused, source)
            from . import metrics  # beside the refused events, in the same counter

            metrics.EVENTS_REFUSED.labels(source, self.REFUSED).inc(refused)
            try:
                client.hincrby(REFUSED_COUNTER, f"{source}:{self.REFUSED}", refused)
            except Exception:  # noqa: BLE001 - the log line stands
                security_log.warning("refused-event counter not updated (Redis did not answer)")
        return taken

    def _verified(self, source: str, member: Any) -> tuple[uuid.UUID, str] | None:
        """``(event id, service)`` of a genuine confirmation, else None."""
        text = member.decode(errors="replace") if isinstance(member, bytes) else str(member)
        parts = text.split(":")
        if len(parts) != 4:
            return None
        event_id, consumer, kid, mac = parts
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            return None
        if not self._keys.verify(kid, self._signed_part(source, event_id, consumer), mac):
            return None
        return parsed, consumer


class Outbox:
    """Writing and relaying the events of one service.

    With a ``batch_publisher`` the relay sends the pending rows in batches of ``batch_size``
    (``EVENT_BATCH_SIZE``): per batch and subscribing queue one message holding the batch's
    envelopes in order, all batches of a relay over one broker connection. A batch's rows are
    marked published only once every queue has its message; at the first failure the relay
    stops and leaves that batch and the rest for the next sweep (each event may then arrive
    twice, which the consumers absorb). Without one, rows go one message each.

    With ``confirmations`` a published row waits for its subscribers' confirmations and is
    published again to those that have not confirmed by its ``confirm_due_at`` (module
    docstring); without, it counts as confirmed once published."""

    PENDING_KEY = "buendnis_outbox_pending"
    CONFIRMATIONS_PER_READ = 1000

    def __init__(self, *, source: str, db: Database, model: type, publisher: Publisher,
                 batch_publisher: BatchPublisher | None = None,
                 batch_size: int | None = None,
                 confirmations: Confirmations | None = None,
                 confirm_seconds: int | None = None) -> None:
        self.source = source
        self.db = db
        self.model = model
        self._publisher = publisher
        self.batch_publisher = batch_publisher
        self.batch_size = batch_size or event_batch_size()
        self.confirmations = confirmations
        self.confirm_seconds = confirm_seconds or event_confirm_seconds()

    @property
    def publisher(self) -> Publisher:
        return self._publisher

    @publisher.setter
    def publisher(self, publisher: Publisher) -> None:
        """Another publisher (tests deliver events in-process so) takes every event, one by
        one: it replaces the batch publisher too, and delivers as it publishes (its rows are
        confirmed when published)."""
        self._publisher = publisher
        self.batch_publisher = None
        self.confirmations = None

    def emit(self, session: Session, event_type: str, **data: Any) -> uuid.UUID:
        """Add an event to the session's transaction; it is published after the commit."""
        plain = envelope_data(event_type, data)
        traceparent = current_traceparent()
        if traceparent:
            plain[TRACEPARENT] = traceparent
        row = self.model(
            event_id=uuid.uuid4(),
            type=event_type,
            source=self.source,
            data=plain,
            occurred_at=utcnow(),
            attempts=0,
        )
        session.add(row)
        session.info[self.PENDING_KEY] = True
        return row.event_id

    def emit_many(self, session: Session, event_type: str, items: list[dict[str, Any]]) -> None:
        """Many events of one type in one statement (bulk paths such as an import)."""
        if not items:
            return
        now = utcnow()
        session.execute(
            insert(self.model),
            [
                {"event_id": uuid.uuid4(), "type": event_type, "source": self.source,
                 "data": envelope_data(event_type, data), "occurred_at": now, "attempts": 0}
                for data in items
            ],
        )
        session.info[self.PENDING_KEY] = True

    def publish(self, row: Any, *, queues: Iterable[str] | None = None) -> None:
        envelope = row.envelope()
        for queue in CATALOGUE[row.type].subscribers if queues is None else queues:
            self.publisher(envelope, queue)

    def _queues_again(self, row: Any, busy: set[str], now: datetime) -> tuple[str, ...]:
        """Where an overdue row goes again: the subscribers that have not confirmed it, but
        not to a queue that still holds messages (``busy``: its consumer is behind or away,
        and the event may well be among them) unless the row was first published more than
        ``CONFIRM_MAX_SECONDS`` ago — a burst that takes its consumer longer than
        ``EVENT_CONFIRM_SECONDS`` is not sent twice, and a queue that never empties still
        gets a lost event within the hour."""
        confirmed = set((row.confirmed_by or "").split(","))
        patient = (row.published_at is None
                   or (now - row.published_at).total_seconds() < CONFIRM_MAX_SECONDS)
        return tuple(queue for queue in CATALOGUE[row.type].subscribers
                     if queue not in confirmed and not (patient and queue in busy))

    def _confirm_due(self, republished: int, now: datetime) -> datetime:
        """When a row published ``republished`` times before is published again if still
        unconfirmed: ``confirm_seconds``, doubled per re-publish, at most an hour."""
        seconds = min(CONFIRM_MAX_SECONDS, self.confirm_seconds * 2 ** min(republished, 20))
        return now + timedelta(seconds=seconds)

    def _awaits_confirmation(self, row: Any) -> bool:
        return self.confirmations is not None and bool(CATALOGUE[row.type].subscribers)

    def relay(self, *, limit: int = 200) -> int:
        """Publish pending events in order; stop at the first failure (the broker is likely
        down) and leave the rest for the next sweep. Returns how many were published.

        On PostgreSQL the rows stay locked (``FOR UPDATE SKIP LOCKED``) while they are
        published, so that concurrent relays share the work. SQLite has only a database-wide
        write lock, which must not be held while talking to the broker: there the rows are
        read, published, then marked, and a concurrent relay may publish a row twice, which
        the consumers' idempotency absorbs."""
        if self.db.is_postgres:
            with self.db.transaction() as session:
                query = self._pending(limit).with_for_update(skip_locked=True)
                rows = list(session.scalars(query))
                done = self._publish_in_order(rows)
                if done:
                    self._mark_published(session, rows[:done])
                return done
        with self.db.transaction() as session:
            rows = list(session.scalars(self._pending(limit)))
        done = self._publish_in_order(rows)
        if rows:
            with self.db.transaction() as session:
                if done:
                    self._mark_published(session, rows[:done])
                if done < len(rows):
                    failed = rows[done]
                    session.execute(
                        update(self.model).where(self.model.seq == failed.seq).values(
                            attempts=self.model.attempts + 1, last_error=failed.last_error)
                    )
        return done

    def _mark_published(self, session: Session, rows: list) -> None:
        """Published now: a row without subscribers (or without confirmations to wait for) is
        confirmed with it, any other waits for its confirmations until ``confirm_due_at``.
        In SQL, not on the loaded rows: SQLite's relay marks in a transaction of its own, after
        the broker answered, and a confirmation may have been noted on a row meanwhile
        (PostgreSQL's holds the rows locked, and the same statements serve)."""
        model, now = self.model, utcnow()
        waiting = [row.seq for row in rows if self._awaits_confirmation(row)]
        done = [row.seq for row in rows if not self._awaits_confirmation(row)]
        if waiting:
            session.execute(
                update(model).where(model.seq.in_(waiting)).values(
                    published_at=now,
                    confirm_due_at=case((model.confirmed_at.is_(None),
                                         self._confirm_due(0, now)), else_=None)),
                execution_options={"synchronize_session": False})
        if done:
            session.execute(
                update(model).where(model.seq.in_(done)).values(
                    published_at=now,
                    confirmed_at=case((model.confirmed_at.is_(None), now),
                                      else_=model.confirmed_at)),
                execution_options={"synchronize_session": False})

    # -- confirmations ------------------------------------------------------------------------
    def take_confirmations(self, *, deadline: float | None = None) -> int:
        """Read (and so remove) the confirmations of this service's events from Redis, note
        them on their rows and confirm the rows every subscriber has confirmed; returns how
        many were confirmed. A confirmation read but not written (the database failed) is
        lost: its row is published again, and the consumer confirms it again."""
        if self.confirmations is None:
            return 0
        seen: dict[uuid.UUID, set[str]] = {}
        try:
            while True:
                taken = self.confirmations.take(self.source, self.CONFIRMATIONS_PER_READ)
                for event_id, consumer in taken:
                    seen.setdefault(event_id, set()).add(consumer)
                if len(taken) < self.CONFIRMATIONS_PER_READ or (
                        deadline is not None and time.monotonic() > deadline):
                    break
        except Exception as exc:  # noqa: BLE001 - Redis away: the next sweep reads them
            log.warning("outbox sweep: confirmations not read (%s)", type(exc).__name__)
        ids, confirmed, now = list(seen), 0, utcnow()
        for start in range(0, len(ids), 500):
            with self.db.transaction() as session:
                query = (select(self.model).where(self.model.event_id.in_(ids[start:start + 500]))
                         .order_by(self.model.seq))
                if self.db.is_postgres:  # waits for a relay publishing the row, then notes
                    query = query.with_for_update()
                for row in session.scalars(query):
                    subscribers = set(CATALOGUE[row.type].subscribers)
                    by = (set((row.confirmed_by or "").split(",")) | seen[row.event_id])
                    by &= subscribers
                    row.confirmed_by = ",".join(sorted(by))
                    if row.confirmed_at is None and by >= subscribers:
                        row.confirmed_at = now
                        row.confirm_due_at = None
                        confirmed += 1
        return confirmed

    def republish(self, *, limit: int = 200) -> int:
        """Publish again, in order, the rows whose confirmations are overdue, each to the
        queues that have not confirmed it (``_queues_again``), and set when the next try is
        due (doubled); a row with nowhere to go now (its queues busy) waits
        ``confirm_seconds`` more without counting as re-published. Stops at the first failure
        as ``relay`` does. Returns how many rows were dealt with."""
        if self.confirmations is None:
            return 0
        model, now = self.model, utcnow()
        query = (select(model).where(model.confirm_due_at <= now, model.confirmed_at.is_(None))
                 .order_by(model.seq).limit(limit))

        def plan(rows: list) -> dict[int, tuple[str, ...]] | None:
            wanted = {queue for row in rows for queue in CATALOGUE[row.type].subscribers}
            try:
                busy = self.confirmations.busy(wanted)
            except Exception as exc:  # noqa: BLE001 - Redis away: the next sweep tries
                log.warning("outbox sweep: queues not read (%s)", type(exc).__name__)
                return None
            return {row.seq: self._queues_again(row, busy, now) for row in rows}

        def next_try(row: Any, sent: bool) -> dict[str, Any]:
            again = (row.republished or 0) + (1 if sent else 0)
            due = self._confirm_due(again, now) if sent else self._confirm_due(0, now)
            return {"republished": again, "confirm_due_at": due}

        if self.db.is_postgres:
            with self.db.transaction() as session:
                rows = list(session.scalars(query.with_for_update(skip_locked=True)))
                targets = plan(rows) if rows else {}
                if targets is None:
                    return 0
                done = self._publish_in_order(rows, queues=targets.get)
                for row in rows[:done]:
                    for name, value in next_try(row, bool(targets[row.seq])).items():
                        setattr(row, name, value)
        else:
            with self.db.transaction() as session:
                rows = list(session.scalars(query))
            targets = plan(rows) if rows else {}
            if targets is None:
                return 0
            done = self._publish_in_order(rows, queues=targets.get)
            if done:
                with self.db.transaction() as session:
                    for row in rows[:done]:
                        session.execute(
                            update(model)
                            .where(model.seq == row.seq, model.confirmed_at.is_(None))
                            .values(**next_try(row, bool(targets[row.seq]))),
                            execution_options={"synchronize_session": False})
        sent = sum(1 for row in rows[:done] if targets[row.seq])
        if sent:
            log.warning("outbox sweep: %d events of %s published again (not confirmed in time)",
                        sent, self.source)
        return done

    def _pending(self, limit: int):
        return (
            select(self.model)
            .where(self.model.published_at.is_(None))
            .order_by(self.model.seq)
            .limit(limit)
        )

    def _publish_in_order(self, rows: list, *,
                          queues: Callable[[int], Iterable[str] | None] | None = None) -> int:
        """How many of ``rows`` were published before the first failure; ``queues(seq)``, if
        given, says where each goes (by default to every subscriber)."""
        queues = queues or (lambda _seq: None)
        if self.batch_publisher is not None:
            return self._publish_batches(rows, queues=queues)
        for done, row in enumerate(rows):
            try:
                self.publish(row, queues=queues(row.seq))
            except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row
                row.attempts += 1
                row.last_error = type(exc).__name__[:120]
                log.warning("outbox relay: %s not published (%s)", row.type, row.last_error)
                return done
        return len(rows)

    def _publish_batches(self, rows: list, *,
                         queues: Callable[[int], Iterable[str] | None]) -> int:
        done = 0
        try:
            with self.batch_publisher() as send:
                for start in range(0, len(rows), self.batch_size):
                    chunk = rows[start:start + self.batch_size]
                    by_queue: dict[str, list[dict[str, Any]]] = {}
                    for row in chunk:
                        envelope = row.envelope()
                        targets = queues(row.seq)
                        for queue in (CATALOGUE[row.type].subscribers if targets is None
                                      else targets):
                            by_queue.setdefault(queue, []).append(envelope)
                    for queue, envelopes in by_queue.items():
                        send(envelopes, queue)
                    done += len(chunk)
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the rows
            if done < len(rows):
                failed = rows[done]
                failed.attempts += 1
                failed.last_error = type(exc).__name__[:120]
                log.warning("outbox relay: batch from %s not published (%s)", failed.type,
                            failed.last_error)
        return done

    def relay_all(self, *, max_seconds: float = 30.0, limit: int = 500) -> int:
        """The sweep: note the confirmations that came in, relay batch after batch until
        nothing is pending, a publish fails, or ``max_seconds`` have passed (the next sweep goes
        on from there), then publish again what waited too long for its confirmations.
        Returns how many events were published for the first time."""
        deadline = time.monotonic() + max_seconds
        self.take_confirmations(deadline=deadline)
        total = 0
        while time.monotonic() < deadline:
            published = self.relay(limit=limit)
            total += published
            if published < limit:
                break
        while time.monotonic() < deadline:
            if self.republish(limit=limit) < limit:
                break
        return total

    def after_commit(self, session: Session) -> None:
        if session.info.pop(self.PENDING_KEY, False):
            try:
                self.relay()
            except Exception:  # noqa: BLE001 - the sweep will publish what is left
                log.warning("outbox relay after commit failed; the sweep will retry", exc_info=True)


Handler = Callable[..., None]
ALONE = "buendnis_event_alone"

# What became of an event in ``Consumer.dispatch_many``.
HANDLED, DUPLICATE, IGNORED, FAILED = "handled", "duplicate", "ignored", "failed"


def alone(handler: Handler) -> Handler:
    """Mark a handler that must have a transaction of its own, never share one with other
    events: one with an effect outside this service's database (a call to another service, a
    file, a message), which a batch's rollback could not take back. Every other handler may run
    in a batch (``Consumer.dispatch_many``)."""
    setattr(handler, ALONE, True)
    return handler


class DuplicateEvent(Exception):
    """The event's id is already recorded as handled."""


class Consumer:
    """Dispatches incoming events to this service's handlers, each id at most once.

    A handler is called as ``handler(session=..., event=...)`` inside a transaction that the
    consumer opens (``Database.transaction``, a unit of work) and in which it records the
    event's id; the handler writes through that session and never commits, rolls back or
    checkpoints it. ``dispatch_many`` may give one such transaction to many events in turn:
    see there what a handler must not do to share it (or mark it ``alone``).
    ``around(envelope)``, if given, is a context around each handler call (a tracing span)."""

    def __init__(self, *, db: Database, model: type,
                 around: Callable[[dict[str, Any]], AbstractContextManager] | None = None,
                 name: str = "", confirmations: Confirmations | None = None) -> None:
        self.db = db
        self.model = model
        self.handlers: dict[str, Handler] = {}
        self.around = around or (lambda _envelope: nullcontext())
        self.name = name
        self.confirmations = confirmations

    def confirm(self, events: list[Event]) -> None:
        """Tell the producers that these events are recorded here (after the commit). A
        confirmation that fails is logged, never raised: the event comes again, is skipped as
        a duplicate and confirmed then."""
        if self.confirmations is None or not self.name or not events:
            return
        try:
            self.confirmations.confirm(self.name, events)
        except Exception as exc:  # noqa: BLE001 - the handling stands; redelivery repairs
            log.warning("%d events recorded but not confirmed to their producer (%s); they "
                        "will come again", len(events), type(exc).__name__)

    def handles(self, event_type: str) -> Callable[[Handler], Handler]:
        if event_type not in CATALOGUE:
            raise EventError(f"unknown event type {event_type!r}")

        def register(handler: Handler) -> Handler:
            self.handlers[event_type] = handler
            return handler

        return register

    def dispatch(self, envelope: dict[str, Any]) -> bool:
        """Handle one event; ``False`` if it had been handled before or has no handler."""
        event = Event.from_envelope(envelope)
        handler = self.handlers.get(event.type)
        if handler is None:
            log.info("no handler for %s; ignored", event.type)
            self.confirm([event])
            return False
        try:
            self._handle_one(event, handler)
        except DuplicateEvent:
            log.info("event %s (%s) already handled; skipped", event.id, event.type)
            self.confirm([event])
            return False
        self.confirm([event])
        return True

    def _handle_one(self, event: Event, handler: Handler) -> None:
        with self.db.transaction() as session:
            if session.get(self.model, event.id) is not None:
                raise DuplicateEvent
            session.add(self.model(event_id=event.id, type=event.type, processed_at=utcnow()))
            try:
                session.flush()
            except IntegrityError:
                raise DuplicateEvent from None
            handler(session=session, event=event)

    # -- batches ------------------------------------------------------------------------------
    def dispatch_many(self, envelopes: list[dict[str, Any]]) -> list[str]:
        """Handle genuine (already checked) envelopes in their order; one outcome each:
        ``handled``, ``duplicate`` (handled before, or twice in this list), ``ignored`` (no
        handler) or ``failed``.

        Consecutive events whose handlers may share a transaction are handled in one: their
        ids are looked up in one query, each is recorded and handled in turn, and one commit
        ends them all, so a batch costs one transaction instead of one per event. What a
        handler may therefore not do (the unit of work's rules, which hold here as well):
        commit, roll back or ``checkpoint()`` its session (a savepoint of its own,
        ``begin_nested``, is fine);
        have an effect outside the database that a rollback would not take back (mark such a
        handler ``alone``); keep objects between calls. After each event the session is
        flushed and emptied (``expunge_all``), so the next event reads the rows as its own
        transaction would, not objects a bulk update left stale. A handler's
        ``unit_of_work.after_commit`` hooks run once the batch has committed.

        If anything in a batch fails but the database itself (any error but
        ``OperationalError``), nothing of the batch is kept and its events are handled again
        one by one, each in its own transaction: the others take effect once, and the failing
        one fails alone (logged and counted, left unrecorded as a single event's failure is).
        A lost or locked database (``OperationalError``) is raised instead: the message is
        retried later and whatever was committed before is skipped as a duplicate."""
        events: list[Event | None] = []
        for envelope in envelopes:
            try:
                events.append(Event.from_envelope(envelope))
            except (KeyError, TypeError, ValueError):
                events.append(None)
        outcomes = [FAILED if event is None else IGNORED for event in events]
        batch: list[int] = []
        for index, event in enumerate(events):
            if event is None:
                log.error("event in a batch without a valid id or time; not handled")
                continue
            handler = self.handlers.get(event.type)
            if handler is None:
                log.info("no handler for %s; ignored", event.type)
            elif getattr(handler, ALONE, False):
                self._handle_batch(batch, events, envelopes, outcomes)
                batch = []
                outcomes[index] = self._handle_contained(event, envelopes[index])
            else:
                batch.append(index)
        self._handle_batch(batch, events, envelopes, outcomes)
        self.confirm([event for event, outcome in zip(events, outcomes, strict=True)
                      if event is not None and outcome != FAILED])
        return outcomes

    def _handle_batch(self, batch: list[int], events: list, envelopes: list,
                      outcomes: list[str]) -> None:
        if len(batch) <= 1:
            for index in batch:
                outcomes[index] = self._handle_contained(events[index], envelopes[index])
            return
        done: dict[int, str] = {}
        try:
            with self.db.transaction() as session:
                ids = [events[index].id for index in batch]
                seen = set(session.scalars(
                    select(self.model.event_id).where(self.model.event_id.in_(ids))))
                fresh = []
                for index in batch:
                    if events[index].id in seen:
                        done[index] = DUPLICATE
                    else:
                        seen.add(events[index].id)
                        fresh.append(index)
                if fresh:  # every id recorded in one statement
                    now = utcnow()
                    session.execute(insert(self.model), [
                        {"event_id": events[index].id, "type": events[index].type,
                         "processed_at": now} for index in fresh])
                for index in fresh:
                    event = events[index]
                    with self.around(envelopes[index]):
                        self.handlers[event.type](session=session, event=event)
                    session.flush()
                    session.expunge_all()
                    done[index] = HANDLED
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad event must not stop the others
            log.warning("a batch of %d events failed (%s); handling them one by one",
                        len(batch), type(exc).__name__)
            for index in batch:
                outcomes[index] = self._handle_contained(events[index], envelopes[index])
            return
        for index, outcome in done.items():
            if outcome == DUPLICATE:
                log.info("event %s (%s) already handled; skipped", events[index].id,
                         events[index].type)
            outcomes[index] = outcome

    def _handle_contained(self, event: Event, envelope: dict[str, Any]) -> str:
        """One event in its own transaction; a failing handler is logged, not raised (but a
        lost database is: see ``dispatch_many``)."""
        try:
            with self.around(envelope):
                self._handle_one(event, self.handlers[event.type])
        except DuplicateEvent:
            log.info("event %s (%s) already handled; skipped", event.id, event.type)
            return DUPLICATE
        except OperationalError:
            raise
        except Exception:  # noqa: BLE001 - logged with its traceback; the others go on
            log.exception("event %s (%s) failed; not handled", event.id, event.type)
            return FAILED
        return HANDLED
