"""Events in batches: the relay sends many events per message, the consumer handles them in one
transaction, and every event still takes effect exactly once — with duplicates in a batch, a
poison event among good ones, forged envelopes slipped into a batch, and (with the real platform)
a worker killed in the middle of a batch.

The in-process tests run the notifications service's real handlers on a real database (SQLite,
or PostgreSQL with BUENDNIS_TEST_PG_URL) and count what a case worker would see: appointments and
reminders planned, once each."""
from __future__ import annotations

import os
import secrets
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from buendnis_common import migrate
from buendnis_common.db import Database
from buendnis_common.events import Outbox, envelope_data
from buendnis_common.settings import OidcSettings, ServiceSettings
from buendnis_common.signing import EventSigner, Keyring
from tests.support.platform import Platform, free_port, wait_for

SENDER = "5b47324b-9b61-5fe1-9cb2-5039497adf31"


@pytest.fixture
def database_url(tmp_path):
    """A migrated database for a service: a SQLite file, or a fresh PostgreSQL database."""
    admin = os.environ.get("BUENDNIS_TEST_PG_URL")
    made: list[str] = []

    def make(service: str) -> str:
        if not admin:
            url = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
        else:
            name = f"t{secrets.token_hex(4)}_{service}"
            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            engine.dispose()
            made.append(name)
            url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(service, url)
        return url

    yield make
    if made:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for name in made:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def settings(name: str, url: str) -> ServiceSettings:
    idp = f"http://127.0.0.1:{free_port()}"
    oidc = OidcSettings(server_url=idp, realm="buendnis", issuer=f"{idp}/realms/buendnis",
                        jwks_url=f"{idp}/certs", token_url=f"{idp}/token",
                        audience="buendnis-api", jwks_min_refresh_seconds=10, leeway_seconds=0)
    return ServiceSettings(
        name=name, database_url=url, redis_url=f"redis://127.0.0.1:{free_port()}/0", oidc=oidc,
        client_id=f"{name}-service", client_secret="x",
        service_urls={"intake": idp, "referrals": idp, "notifications": idp},
        http_timeout_seconds=1.0, relay_interval_seconds=1.0)


@pytest.fixture
def notifications(database_url, monkeypatch):
    monkeypatch.setenv("REMINDER_OFFSETS", "10m")
    from notifications.app import create_app

    app = create_app(settings("notifications", database_url("notifications")))
    runtime = app.extensions["buendnis"]
    with app.app_context():
        yield runtime
    runtime.db.dispose()


def booking(*, start: datetime | str | None = None, source: str = "referrals") -> dict:
    start = start or datetime.now(UTC) + timedelta(days=2)
    end = (start + timedelta(hours=1)) if isinstance(start, datetime) else start
    return {"id": str(uuid.uuid4()), "type": "appointment.booked", "source": source,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": envelope_data("appointment.booked", {
                "referral_id": uuid.uuid4(), "participant_id": uuid.uuid4(),
                "from_org": "jmd-leverkusen", "to_org": "caritas-leverkusen",
                "alliance": "leverkusen", "need_category": "language_course",
                "sender_user_id": SENDER, "appointment_id": uuid.uuid4(), "start": start,
                "end": end, "mode": "in_person", "status": "booked"})}


def counts(runtime) -> tuple[int, int, int]:
    """Appointments, reminders and handled event ids in notifications' database."""
    with runtime.db.Session() as session:
        return tuple(session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                     for table in ("appointments", "reminders", "processed_events"))


@contextmanager
def commits(runtime):
    """How many transactions were committed on the service's database meanwhile."""
    seen: list[int] = []

    def count(_connection):
        seen.append(1)

    event.listen(runtime.db.engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(runtime.db.engine, "commit", count)


# -- the consumer ---------------------------------------------------------------------------------

def test_a_batch_is_one_transaction_and_its_duplicates_take_effect_once(notifications):
    events = [notifications.signer.sign(booking()) for _ in range(60)]
    with_duplicates = [*events, *events[:10], events[5]]  # the relay sent some twice
    with commits(notifications) as committed:
        assert notifications.receive_many(with_duplicates) == 60
    assert len(committed) == 1  # sixty events, one commit
    assert counts(notifications) == (60, 120, 60)  # two reminders per appointment

    # The same message again (redelivered after a crash): nothing happens twice.
    assert notifications.receive_many(with_duplicates) == 0
    assert counts(notifications) == (60, 120, 60)
    # ... and neither does one of its events arriving on its own.
    assert notifications.receive(events[7]) is False
    assert counts(notifications) == (60, 120, 60)


def test_a_poison_event_fails_alone_and_the_others_take_effect_once(notifications):
    good = [notifications.signer.sign(booking()) for _ in range(20)]
    # Genuine and signed, but its start is no time: the handler raises.
    poison = notifications.signer.sign(booking(start="not-a-time"))
    batch = [*good[:10], poison, *good[10:]]
    failed = {"service": "notifications", "type": "appointment.booked", "outcome": "failed"}
    before = REGISTRY.get_sample_value("buendnis_events_consumed_total", failed) or 0
    assert notifications.receive_many(batch) == 20
    assert counts(notifications) == (20, 40, 20)
    with notifications.db.Session() as session:
        handled = {str(row) for row in session.scalars(text("SELECT event_id FROM "
                                                              "processed_events"))}
    assert str(uuid.UUID(poison["id"])) not in {str(uuid.UUID(h)) for h in handled}
    assert REGISTRY.get_sample_value("buendnis_events_consumed_total", failed) == before + 1

    # Delivered again, the good ones are skipped and the poison one fails again, alone.
    assert notifications.receive_many(batch) == 0
    assert counts(notifications) == (20, 40, 20)


def test_forged_events_inside_a_batch_are_refused_and_the_genuine_ones_handled(notifications):
    genuine = [notifications.signer.sign(booking()) for _ in range(5)]
    attacker = EventSigner(Keyring("an-attackers-guess-at-the-deployment-key"))
    tampered = notifications.signer.sign(booking())
    tampered["data"]["appointment_id"] = str(uuid.uuid4())  # changed in Redis
    forged = {
        "unsigned": booking(),
        "unknown_key": attacker.sign(booking()),
        "bad_signature": tampered,
        # signed with the deployment's key, but appointments come from referrals only
        "wrong_source": notifications.signer.sign(booking(source="intake")),
        "malformed": ["not", "an", "envelope"],
    }

    def refused(reason: str) -> float:
        return REGISTRY.get_sample_value(
            "buendnis_events_refused_total",
            {"service": "notifications", "reason": reason}) or 0

    before = {reason: refused(reason) for reason in forged}
    batch = [genuine[0], *forged.values(), *genuine[1:]]
    assert notifications.receive_many(batch) == 5
    assert counts(notifications) == (5, 10, 5)  # the forged bookings planned nothing
    for reason in forged:
        assert refused(reason) == before[reason] + 1, reason
    # A message that is not a list at all is refused whole.
    assert notifications.receive_many({"type": "appointment.booked"}) == 0
    assert refused("unsigned") == before["unsigned"] + 2
    assert counts(notifications) == (5, 10, 5)


# -- the relay ------------------------------------------------------------------------------------

def test_the_relay_sends_batches_and_marks_what_was_sent(database_url):
    from intake.db import MODELS

    db = Database(database_url("intake"))
    sent: list[tuple[str, list[dict]]] = []
    fail_at: list[int] = [3]  # the third message fails: the broker went away

    @contextmanager
    def batches():
        def send(envelopes, queue):
            if len(sent) + 1 == fail_at[0]:
                raise ConnectionError("broker gone")
            sent.append((queue, envelopes))
        yield send

    outbox = Outbox(source="intake", db=db, model=MODELS.outbox, publisher=None,
                    batch_publisher=batches, batch_size=100)
    with db.transaction() as session:
        # 250 erasures, each for referrals and notifications
        outbox.emit_many(session, "participant.erased", [
            {"participant_id": uuid.uuid4(), "owner_org": "jmd-leverkusen",
             "alliance": "leverkusen"} for _ in range(250)])

    def pending() -> int:
        with db.Session() as session:
            return session.scalar(select(func.count()).select_from(MODELS.outbox)
                                  .where(MODELS.outbox.published_at.is_(None)))

    assert outbox.relay(limit=500) == 100  # the first batch reached both queues
    assert [(queue, len(envelopes)) for queue, envelopes in sent] == [
        ("referrals", 100), ("notifications", 100)]
    assert pending() == 150
    with db.Session() as session:
        first_pending = session.scalars(select(MODELS.outbox).where(
            MODELS.outbox.published_at.is_(None)).order_by(MODELS.outbox.seq)).first()
        assert first_pending.attempts == 1 and first_pending.last_error == "ConnectionError"

    fail_at[0] = 0  # the broker is back
    sent.clear()
    assert outbox.relay_all() == 150
    assert [(queue, len(envelopes)) for queue, envelopes in sent] == [
        ("referrals", 100), ("notifications", 100), ("referrals", 50), ("notifications", 50)]
    assert pending() == 0
    ids = [envelope["id"] for queue, envelopes in sent if queue == "referrals"
           for envelope in envelopes]
    assert len(ids) == len(set(ids)) == 150  # in order, each once
    db.dispose()


# -- a worker killed in the middle of a batch (the real platform) -----------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Redis, referrals' worker and beat (the relay) and one notifications worker."""
    platform = Platform(tmp_path_factory.mktemp("batches"), extra_env={
        "REMINDER_OFFSETS": "10m", "BROKER_VISIBILITY_TIMEOUT_SECONDS": "10",
        "EVENT_BATCH_SIZE": "200", "LOG_LEVEL": "WARNING"})
    try:
        platform.migrate()
        for name in ("redis", "web-redis", "referrals-worker", "referrals-beat",
                     "notifications-worker"):
            platform.start(name)
        platform.wait_redis()
        for name in ("referrals-worker", "notifications-worker"):
            platform.wait_log(name, "ready.")
        yield platform
    finally:
        platform.close()


def scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.mark.platform
def test_a_worker_killed_in_the_middle_of_a_batch_loses_and_doubles_nothing(pipeline):
    from referrals.db import MODELS

    count = 1000
    referrals, notifications = (pipeline.database_urls[s] for s in ("referrals",
                                                                     "notifications"))
    db = Database(referrals)
    outbox = Outbox(source="referrals", db=db, model=MODELS.outbox, publisher=None)
    start = datetime.now(UTC) + timedelta(days=2)
    with db.transaction() as session:
        outbox.emit_many(session, "appointment.booked", [
            {**booking(start=start + timedelta(minutes=i))["data"]} for i in range(count)])
    db.dispose()

    def handled() -> int:
        return scalar(notifications, "SELECT count(*) FROM processed_events")

    # Killed (SIGKILL, no warm shutdown) once a first batch is in and before the last one is.
    wait_for(lambda: handled() > 0, timeout=120, what="a first batch handled", interval=0.02)
    pipeline.crash("notifications-worker", down=1)
    at_kill = handled()
    assert at_kill < count, "every batch was in before the kill; nothing was proven"
    # The relay sends everything once more, as after a crash between sending and marking.
    with create_engine(referrals).begin() as connection:
        connection.execute(text("UPDATE outbox SET published_at = NULL"))

    wait_for(lambda: handled() >= count, timeout=240, what="every event handled after the kill",
             interval=0.5)
    reminders = scalar(notifications, "SELECT count(*) FROM reminders")
    keys = scalar(notifications, "SELECT count(DISTINCT idempotency_key) FROM reminders")
    appointments = scalar(notifications, "SELECT count(*) FROM appointments")
    assert (handled(), appointments, reminders, keys) == (count, count, 2 * count, 2 * count)


@pytest.mark.platform
def test_reminder_dispatch_is_not_queued_behind_a_burst_of_events(pipeline):
    import redis
    from celery import Celery

    from buendnis_common.events import EVENTS_TASK
    from notifications.reminder.handlers import DISPATCH_TASK

    broker = redis.Redis.from_url(pipeline.redis_url)
    celery = Celery(broker=pipeline.redis_url)
    try:
        with celery.producer_or_acquire() as producer:
            for _ in range(30):  # 3,000 bookings, as the relay sends them
                celery.send_task(EVENTS_TASK, queue="notifications", producer=producer,
                                 args=[[pipeline.sign_event(booking()) for _ in range(100)]])
        celery.send_task(DISPATCH_TASK, queue="notifications.dispatch")
        # The worker takes the dispatch run while most of the burst still waits.
        wait_for(lambda: broker.llen("notifications.dispatch") == 0, timeout=60,
                 what="the dispatch run taken from its queue", interval=0.05)
        assert broker.llen("notifications") > 10
    finally:
        celery.close()
        broker.close()
