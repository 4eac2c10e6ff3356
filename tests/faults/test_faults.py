"""What a crash can cost: the whole platform under a small, steady load through the gateway,
while each kind of process is killed (SIGKILL) at a bad moment and started again two seconds
later, as a container runtime restarts a dead container — a service's gunicorn, the referrals
worker right after a referral was accepted, the notifications beat while reminders fall due, the
gateway, Redis (down for ten seconds), and on PostgreSQL every connection of the test's
databases (``pg_terminate_backend``; the shared server itself is not restarted).

Afterwards: every write the platform acknowledged (2xx) is readable, every accepted referral
reached the sender's inbox exactly once, every outbox is empty (each event confirmed by every
subscriber, ``buendnis_common.events``), every reminder went out once
(or, in the one uncertain window, is reported as ``reminder.unconfirmed``), no answer was a 500
and no request hung, the audit chain verifies, and the API answered again within a bound after
each restart. The figures are printed (``pytest -s``) for the README.
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from tests.notifications.conftest import REMINDER_ENV, maildir_messages, person, sql
from tests.support.platform import BIN, REPO, ApiClient, Platform, wait_for

# It measures what is lost under load and kills: `make test` runs it alone, after the rest.
pytestmark = [pytest.mark.platform, pytest.mark.alone]

THREADS = 3
CLIENT_TIMEOUT = 20  # a request without an answer by then has hung
RECOVERY_BOUND = 30  # seconds from a restart until the API answers again (crowded machine)
REDIS_DOWN = 10
ALLOWED_DURING_OUTAGE = {502, 503, 504}
FAULT_ENV = {
    **REMINDER_ENV,
    "REMINDER_OFFSETS": "20s",  # reminders fall due while the faults happen
    "REMINDER_LEASE_SECONDS": "6",
    # An event held by a killed worker comes back after this (default 300 s), within the test.
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "10",
    # A reminder whose participant's contact cannot be read while intake restarts tries again
    # until the appointment begins, as with the defaults, not three times in a few seconds.
    "REMINDER_MAX_ATTEMPTS": "8",
    # The broker's queue survives its crash, as compose's and Kubernetes' Redis (appendonly).
    "REDIS_APPENDONLY": "yes",
    # An event lost between BRPOP and kombu's unacked bookkeeping (Redis or a worker killed
    # there) is published again after this (default 120 s), within the test.
    "EVENT_CONFIRM_SECONDS": "15",
}
JMD, CARITAS = "cw.jmd-leverkusen", "cw.caritas-leverkusen"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Ledger:
    """What the load was told: acknowledged writes, and every answer that was not 2xx."""

    participants: list[str] = field(default_factory=list)
    consents: list[tuple[str, str]] = field(default_factory=list)
    referrals: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    appointments: list[str] = field(default_factory=list)
    reads: int = 0
    accepted_in: dict[str, str] = field(default_factory=dict)  # referral → fault under way
    referred_in: dict[str, str] = field(default_factory=dict)
    refused: Counter = field(default_factory=Counter)  # (fault, status) → count
    errors: list[str] = field(default_factory=list)  # 500s and hangs: failures
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted_now: threading.Event = field(default_factory=threading.Event)
    fault: str = "none"


class Load(threading.Thread):
    """One client: registers a participant, records consent, refers them to the Caritas, which
    accepts and books an appointment whose reminder falls due 40 s later; reads lists between."""

    def __init__(self, platform: Platform, ledger: Ledger, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.ledger, self.stop = ledger, stop
        self.jmd = ApiClient(platform.gateway_url, platform.token(JMD))
        self.caritas = ApiClient(platform.gateway_url, platform.token(CARITAS))

    def call(self, client: ApiClient, method: str, path: str, **kwargs):
        """The answer if 2xx, else None (recorded: allowed during an outage, or a failure)."""
        started_in = self.ledger.fault
        try:
            response = client.request(method, path, timeout=CLIENT_TIMEOUT, **kwargs)
        except requests.Timeout:
            fault = self.fault(started_in)
            with self.ledger.lock:
                self.ledger.errors.append(f"{fault}: {method} {path} hung")
            return None
        except requests.RequestException:  # refused, or cut off mid-answer
            fault = self.fault(started_in)
            with self.ledger.lock:
                self.ledger.refused[(fault, "no connection")] += 1
            return None
        if response.status_code < 300:
            return response
        fault = self.fault(started_in)
        with self.ledger.lock:
            if response.status_code >= 500 and response.status_code not in ALLOWED_DURING_OUTAGE:
                self.ledger.errors.append(f"{fault}: {method} {path} {response.status_code}")
            else:
                self.ledger.refused[(fault, response.status_code)] += 1
        return None

    def fault(self, started_in: str) -> str:
        """The fault a request met: the one under way when it ended, or when it began."""
        ended_in = self.ledger.fault
        return ended_in if ended_in != "none" else started_in

    def run(self) -> None:
        ledger = self.ledger
        while not self.stop.is_set():
            self.once(ledger)
            for client, path in ((self.jmd, "/api/v1/participants?page_size=5"),
                                 (self.caritas, "/api/v1/referrals?box=received&page_size=5"),
                                 (self.jmd, "/api/v1/notifications?page_size=5")):
                if self.call(client, "GET", path):
                    with ledger.lock:
                        ledger.reads += 1
            time.sleep(0.3)

    def once(self, ledger: Ledger) -> None:
        body = person(preferred_channel="email")
        created = self.call(self.jmd, "POST", "/api/v1/participants", json=body)
        if not created:
            return
        participant = created.json()["id"]
        with ledger.lock:
            ledger.participants.append(participant)
        consent = self.call(self.jmd, "POST", f"/api/v1/participants/{participant}/consents",
                            json={"recipient_org": "caritas-leverkusen",
                                  "data_categories": ["identity", "languages"],
                                  "purpose": "referral",
                                  "valid_until": (date.today() + timedelta(days=90)).isoformat()})
        if not consent:
            return
        with ledger.lock:
            ledger.consents.append((participant, consent.json()["id"]))
        referral = self.call(self.jmd, "POST", "/api/v1/referrals", json={
            "participant_id": participant, "to_org": "caritas-leverkusen",
            "need_category": "language_course"})
        if not referral:
            return
        referral = referral.json()["id"]
        with ledger.lock:
            ledger.referrals.append(referral)
            ledger.referred_in[referral] = ledger.fault
        if not self.call(self.caritas, "POST", f"/api/v1/referrals/{referral}/status",
                         json={"status": "accepted"}):
            return
        with ledger.lock:
            ledger.accepted.append(referral)
            ledger.accepted_in[referral] = ledger.fault
        ledger.accepted_now.set()
        start = now() + timedelta(seconds=60)
        booked = self.call(self.caritas, "POST", f"/api/v1/referrals/{referral}/appointments",
                           json={"start": start.isoformat(),
                                 "end": (start + timedelta(minutes=30)).isoformat(),
                                 "mode": "in_person", "location": "Caritas, Raum 2"})
        if booked:
            with ledger.lock:
                ledger.appointments.append(booked.json()["id"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = Platform(tmp_path_factory.mktemp("faults"), extra_env=FAULT_ENV, restart_dead=True)
    try:
        running.start_all()
    except Exception:
        for name in running.processes:
            print(f"----- {name} -----\n{running.log(name)[-3000:]}")
        running.close()
        raise
    yield running
    running.close()


def api_answers(platform: Platform, client: ApiClient) -> bool:
    try:
        return all(client.get(path, timeout=5).status_code == 200 for path in (
            "/api/v1/participants?page_size=1", "/api/v1/referrals?box=sent&page_size=1",
            "/api/v1/notifications?page_size=1"))
    except requests.RequestException:
        return False


def recovered_after(platform: Platform, client: ApiClient, restarted: float) -> float:
    wait_for(lambda: api_answers(platform, client), timeout=90, interval=0.2,
             what="the API answering again")
    return time.monotonic() - restarted


def pending_events(platform: Platform) -> dict[str, int]:
    pending = {}
    for service in ("intake", "referrals", "notifications", "gateway"):
        # Every one of them has an outbox: a failed read raises (wait_for retries it) instead of
        # leaving the service out, which would make "every outbox empty" pass unread.
        engine = create_engine(platform.database_urls[service])
        try:
            with engine.connect() as connection:
                # Empty means delivered: every subscriber confirmed it (not only published).
                pending[service] = connection.execute(text(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL "
                    "OR confirmed_at IS NULL")).scalar_one()
        finally:
            engine.dispose()
    return pending


QUEUES = ("intake", "referrals", "notifications", "gateway")


def holding_an_event(broker: redis.Redis, queue: str, seconds: float) -> int:
    """Wait (up to ``seconds``) until a message of ``queue`` is delivered and not yet
    acknowledged; how many are (0 if the moment did not come)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            held = [value for value in broker.hvals("unacked")
                    if json.loads(value)[-1] == queue]
        except redis.RedisError:
            held = []
        if held:
            return len(held)
        time.sleep(0.005)
    return 0


def terminate_backends(platform: Platform) -> int:
    """Every connection to this test's databases, ended by the server (as a database restart or
    failover ends them); the shared server itself stays up for the other sessions."""
    postgres = platform.postgres
    with postgres.engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname LIKE :prefix AND pid <> pg_backend_pid()"),
            {"prefix": f"{postgres.prefix}_%"}).scalar_one()


def same(ids) -> set[str]:
    return {str(uuid.UUID(str(value))) for value in ids}


def test_killed_processes_lose_no_acknowledged_write_event_or_reminder(platform):
    ledger, stop = Ledger(), threading.Event()
    probe = platform.as_user(JMD)
    loads = [Load(platform, ledger, stop) for _ in range(THREADS)]
    for load in loads:
        load.start()
    recovery: dict[str, float] = {}
    in_flight: dict[str, int] = {}  # messages the broker held for the killed process
    broker = redis.Redis.from_url(platform.redis_url, socket_timeout=2)
    started = time.monotonic()
    try:
        time.sleep(8)  # the load under way, the first reminders planned

        # A web process: the intake service's gunicorn, in the middle of registrations.
        ledger.fault = "intake web"
        restarted = platform.crash("intake")
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)

        # A worker: the referrals worker, right after a referral was accepted (its event is in
        # the outbox, or on its way to the broker).
        ledger.accepted_now.clear()
        assert ledger.accepted_now.wait(timeout=60), "no referral accepted"
        ledger.fault = "referrals worker"
        restarted = platform.crash("referrals-worker")
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)
        wait_for(lambda: platform.log("referrals-worker").count("ready.") >= 2, timeout=90,
                 interval=0.3, what="the referrals worker ready again")

        # A consumer: the notifications worker while it holds an event it has not yet
        # acknowledged (handled after its task, acks_late), if the kill can catch one, while
        # reminders are being sent.
        ledger.fault = "notifications worker"
        in_flight["notifications worker"] = holding_an_event(broker, "notifications", 15)
        restarted = platform.crash("notifications-worker")
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)

        # Beat: the notifications beat, which sets off the reminders' dispatch, while they fall
        # due (the first appointments were booked ~20 s ago).
        ledger.fault = "notifications beat"
        restarted = platform.crash("notifications-beat")
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)

        # The gateway.
        ledger.fault = "gateway"
        restarted = platform.crash("gateway")
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)

        # Redis, the broker, down for ten seconds (with its append-only file, as deployed: what
        # it held at the kill is there again after the restart).
        ledger.fault = "redis"
        in_flight["redis"] = sum(broker.llen(queue) for queue in QUEUES) + broker.hlen("unacked")
        restarted = platform.crash("redis", down=REDIS_DOWN)
        recovery[ledger.fault] = recovered_after(platform, probe, restarted)

        if platform.postgres:
            ledger.fault = "postgresql connections"
            restarted = time.monotonic()
            terminated = terminate_backends(platform)
            recovery[f"{ledger.fault} ({terminated} ended)"] = recovered_after(
                platform, probe, restarted)
        ledger.fault = "none"
        time.sleep(5)  # the platform under load once more after the last fault
    finally:
        stop.set()
        for load in loads:
            load.join(timeout=CLIENT_TIMEOUT * 6)
    load_seconds = time.monotonic() - started
    assert not any(load.is_alive() for load in loads), "a client hung"

    # Every event delivered: the outboxes empty, each accepted referral in the sender's inbox
    # once, each referral in the receiver's inbox once.
    settle_started = time.monotonic()
    wait_for(lambda: not any(pending_events(platform).values()), timeout=90, interval=0.5,
             what="every outbox empty")

    def inbox_counts(kind: str) -> Counter:
        return Counter(str(uuid.UUID(str(row[0]))) for row in sql(
            platform, "notifications",
            "SELECT referral_id FROM inbox_entries WHERE kind = :kind", kind=kind))

    accepted, referred = same(ledger.accepted), same(ledger.referrals)
    try:
        wait_for(lambda: accepted <= set(inbox_counts("referral.accepted"))
                 and referred <= set(inbox_counts("referral.received")), timeout=90,
                 interval=0.5, what="every accepted referral in the sender's inbox")
    except TimeoutError:
        missing_accepted = accepted - set(inbox_counts("referral.accepted"))
        missing_received = referred - set(inbox_counts("referral.received"))
        faults = {str(uuid.UUID(r)): f for r, f in ledger.accepted_in.items()}
        referred_in = {str(uuid.UUID(r)): f for r, f in ledger.referred_in.items()}
        pytest.fail(f"events lost: referral.accepted of {len(missing_accepted)} referrals "
                    f"(accepted during {Counter(faults[r] for r in missing_accepted)}), "
                    f"referral.received of {len(missing_received)} (referred during "
                    f"{Counter(referred_in[r] for r in missing_received)}); "
                    f"messages in the broker at the kills {in_flight}")
    events_settled = time.monotonic() - settle_started
    for kind, expected in (("referral.accepted", accepted), ("referral.received", referred)):
        counts = inbox_counts(kind)
        assert {referral: counts[referral] for referral in expected
                if counts[referral] != 1} == {}, kind

    # Every acknowledged write readable.
    jmd, caritas = platform.as_user(JMD), platform.as_user(CARITAS)
    for participant in ledger.participants:
        assert jmd.get(f"/api/v1/participants/{participant}").status_code == 200, participant
    consents_by_participant: dict[str, set[str]] = {}
    for participant, consent in ledger.consents:
        consents_by_participant.setdefault(participant, set()).add(consent)
    for participant, consents in consents_by_participant.items():
        listed = jmd.get(f"/api/v1/participants/{participant}/consents")
        assert listed.status_code == 200, listed.text
        assert consents <= {c["id"] for c in listed.json()}, participant
    for referral in ledger.referrals:
        read = jmd.get(f"/api/v1/referrals/{referral}")
        assert read.status_code == 200, read.text
        if referral in ledger.accepted:
            assert read.json()["status"] != "requested", read.json()["status"]
    for appointment in ledger.appointments:
        assert caritas.get(f"/api/v1/appointments/{appointment}").status_code == 200

    # Every reminder of an acknowledged appointment sent once, or reported as uncertain.
    appointments = same(ledger.appointments)

    def reminders():
        rows = sql(platform, "notifications",
                   "SELECT id, appointment_id, status, confirmed, idempotency_key "
                   "FROM reminders WHERE recipient = 'participant'")
        return [row for row in rows if str(uuid.UUID(str(row[1]))) in appointments]

    def settled():
        rows = reminders()
        return rows if len(rows) == len(appointments) and all(
            row[2] not in ("scheduled", "sending") for row in rows) else None

    # The last appointments' reminders fall due 40 s after their booking.
    try:
        rows = wait_for(settled, timeout=120, interval=0.5, what="every reminder settled")
    except TimeoutError:
        found = reminders()
        pytest.fail(f"reminders not settled: {len(found)} rows for {len(appointments)} "
                    "appointments; unsettled: " + repr(sql(
                        platform, "notifications",
                        "SELECT status, attempts, due_at, lease_until, handed_over_at, "
                        "claimed_by, last_error FROM reminders WHERE recipient = 'participant' "
                        "AND status IN ('scheduled', 'sending')")) + f"; now {now()}")
    reminders_settled = time.monotonic() - settle_started
    time.sleep(1)
    mail = Counter(message["Message-ID"].strip().strip("<>").rsplit("@", 1)[0]
                   for message in maildir_messages(platform))
    assert Counter(row[2] for row in rows) == {"sent": len(rows)}, sql(
        platform, "notifications", "SELECT status, cancel_reason, last_error, count(*) FROM "
        "reminders WHERE status <> 'sent' GROUP BY status, cancel_reason, last_error")
    uncertain = [row for row in rows if row[3] is not None and not bool(row[3])]
    assert {row[4]: mail[row[4]] for row in rows if mail[row[4]] > 1} == {}  # none twice
    missing = [row[4] for row in rows if mail[row[4]] == 0 and row not in uncertain]
    assert missing == []
    reported = same(e["reminder_id"] for e in jmd.get(
        "/api/v1/notifications", params={"kind": "reminder.unconfirmed", "page_size": 100}
    ).json())
    assert same(row[0] for row in uncertain) <= reported

    # The audit chain verifies.
    verdict = subprocess.run([str(BIN / "python"), "-m", "gateway.audit", "verify"], cwd=REPO,
                             env=platform.env, capture_output=True, text=True, timeout=120)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr

    database = "PostgreSQL" if platform.postgres else "SQLite"
    refused = Counter()
    for (fault, status), count in ledger.refused.items():
        refused[f"{fault}: {status}"] += count
    print(f"\nFault suite on {database}: {THREADS} clients for {load_seconds:.0f} s; "
          f"acknowledged writes checked: {len(ledger.participants)} participants, "
          f"{len(ledger.consents)} consents, {len(ledger.referrals)} referrals "
          f"({len(ledger.accepted)} accepted), {len(ledger.appointments)} appointments; "
          f"{ledger.reads} list reads")
    print(f"events: {len(referred)} referral.received and {len(accepted)} referral.accepted "
          f"inbox entries, each once; outboxes empty {events_settled:.1f} s after the load")
    print(f"reminders: {len(rows)} sent, {len(rows) - len(uncertain)} confirmed once, "
          f"{len(uncertain)} reported as reminder.unconfirmed; all settled "
          f"{reminders_settled:.1f} s after the load")
    for fault, seconds in recovery.items():
        print(f"recovery after {fault}: API answers {seconds:.1f} s after the restart")
    print(f"messages in the broker at the kill: {in_flight}")
    # Celery's worker can end itself when Redis goes away mid-read (kombu closes a channel
    # whose transport it has already dropped: AttributeError, "Unrecoverable error"); the
    # restart policy brings it back, as in every deployment.
    print(f"ended by themselves and restarted: {platform.self_exits or 'none'}")
    print(f"refused during outages: {dict(refused)}; audit: {verdict.stdout.strip()}")
    assert ledger.errors == []
    assert not [key for key in ledger.refused if key[0] == "none"], "refused outside a fault"
    for fault, seconds in recovery.items():
        assert seconds < RECOVERY_BOUND, (fault, seconds)
    assert ledger.accepted and ledger.appointments and rows
