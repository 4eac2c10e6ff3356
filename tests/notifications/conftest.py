"""The notifications stories' world: demo users booking appointments through the gateway, a real
SMTP server on loopback (aiosmtpd) that records what it receives and can be told to be slow or
to refuse, an SMS provider sink, and — for the reminder stories — a second platform of our own
with offsets of seconds, so that reminders fall due while a test watches."""
from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from buendnis_dev import sms as sms_sink
from tests.support.platform import REPO, ApiClient, Platform, free_port, wait_for

_counter = itertools.count(1)


# -- a real SMTP server that the tests can watch and steer -----------------------------------------

def message_key(message: EmailMessage) -> str:
    """The reminder's idempotency key, which its Message-ID carries."""
    return str(message["Message-ID"] or "").strip().strip("<>").rsplit("@", 1)[0]


@dataclass
class Received:
    message: EmailMessage
    recipients: list[str]
    at: datetime
    connection: str = ""  # the client's address and port: one per SMTP connection

    @property
    def key(self) -> str:
        return message_key(self.message)

    def calendar(self) -> str | None:
        for part in self.message.walk():
            if part.get_content_type() == "text/calendar":
                return part.get_content()
        return None

    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


@dataclass
class Behaviour:
    """How the server treats mail to one recipient."""

    delay_before_data_reply: float = 0.0  # accept the message, then keep the client waiting
    delay_before_rcpt_reply: float = 0.0  # keep the client waiting before the message is sent
    refuse: str | None = None  # e.g. "451 4.3.0 try again later", answered to the message
    times: int | None = None  # behave so this many times, then normally
    arrived: threading.Event = field(default_factory=threading.Event)

    def applies(self) -> bool:
        return self.times is None or self.times > 0

    def used(self) -> None:
        if self.times is not None:
            self.times -= 1


class MailCatcher:
    """aiosmtpd on loopback: every message it accepts, with the time it arrived."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[Received] = []
        # Every DATA, accepted or not: recipients, when, the message's key (its Message-ID).
        self.attempts: list[tuple[str, datetime, str]] = []
        self.behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    def start(self) -> MailCatcher:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def behave(self, recipient: str, **kwargs) -> Behaviour:
        behaviour = Behaviour(**kwargs)
        self.behaviours[recipient.lower()] = behaviour
        return behaviour

    def _behaviour(self, recipients) -> Behaviour | None:
        for recipient in recipients:
            if recipient.lower() in self.behaviours:
                return self.behaviours[recipient.lower()]
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        behaviour = self._behaviour([address])
        if behaviour and behaviour.delay_before_rcpt_reply and behaviour.applies():
            behaviour.used()
            behaviour.arrived.set()
            await asyncio.sleep(behaviour.delay_before_rcpt_reply)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        now = datetime.now(UTC)
        behaviour = self._behaviour(envelope.rcpt_tos)
        key = message_key(email.message_from_bytes(envelope.content,
                                                   policy=email.policy.default))
        with self._lock:
            self.attempts.append((",".join(envelope.rcpt_tos), now, key))
        if behaviour and behaviour.refuse and behaviour.applies():
            behaviour.used()
            return behaviour.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(Received(message, list(envelope.rcpt_tos), now,
                                          str(session.peer)))
        if behaviour and behaviour.delay_before_data_reply and behaviour.applies():
            behaviour.used()
            behaviour.arrived.set()
            await asyncio.sleep(behaviour.delay_before_data_reply)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if address.lower() in
                    (a.lower() for a in r.recipients)]

    def tries_to(self, address: str) -> dict[str, list[datetime]]:
        """Each message's tries to ``address`` (by its key), in order."""
        tries: dict[str, list[datetime]] = {}
        with self._lock:
            for to, at, key in self.attempts:
                if address.lower() in to.lower():
                    tries.setdefault(key, []).append(at)
        return {key: sorted(times) for key, times in tries.items()}


class SmsProvider(sms_sink.SmsSink):
    """The development SMS sink, which records each idempotency key once, and can be told to
    answer slowly (after recording), as a provider whose answer gets lost."""

    def __init__(self, port: int, path: Path) -> None:
        super().__init__(("127.0.0.1", port), path)
        self.requests: list[tuple[str, str]] = []
        self.slow: dict[str, tuple[int, float]] = {}
        self.failing: dict[str, int] = {}  # number → the status to answer instead

    def accept(self, key: str, to: str, text: str):
        if to in self.failing:
            with self.lock:
                self.requests.append((key, to))
            return self.failing[to], {"id": ""}
        answer = super().accept(key, to, text)
        with self.lock:
            self.requests.append((key, to))
            times, delay = self.slow.get(to, (0, 0.0))
            if times:
                self.slow[to] = (times - 1, delay)
        if times:
            time.sleep(delay)
        return answer

    def to(self, number: str) -> list[dict]:
        return [m for m in self.messages() if m["to"] == number]

    def requests_to(self, number: str) -> list[str]:
        with self.lock:
            return [key for key, to in self.requests if to == number]


# -- a platform of our own, for the reminder stories -----------------------------------------------

OFFSETS = "8s,4s"

REMINDER_ENV = {
    "REMINDER_OFFSETS": OFFSETS,
    "REMINDER_DISPATCH_INTERVAL_SECONDS": "1",
    "REMINDER_DISPATCH_BUDGET_SECONDS": "4",
    "REMINDER_LEASE_SECONDS": "12",
    "SMTP_TIMEOUT_SECONDS": "2",
    "SMS_TIMEOUT_SECONDS": "2",
    "REMINDER_RETRY_BACKOFF_SECONDS": "1",
    "REMINDER_MAX_ATTEMPTS": "3",
    # Messages about one appointment keep this distance (the reminders here are seconds apart).
    "CHANGE_NOTICE_INTERVAL": "2s",
    # The stories run at any hour; quiet hours have their own tests with a fixed clock.
    "SMS_QUIET_HOURS": "off",
}


class ReminderPlatform:
    """The whole platform with reminders seconds before the appointment, our SMTP server in
    place of the sink, an SMS sink, and extra notifications workers and beats on demand."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        sms_port = free_port()
        self.platform = Platform(workdir, extra_env={
            **REMINDER_ENV, "SMS_PROVIDER_URL": f"http://127.0.0.1:{sms_port}/messages",
            **(env or {}),
        })
        self.mail = MailCatcher(self.platform.ports["smtp"])
        self.sms = SmsProvider(sms_port, workdir / "sms" / "messages.jsonl")
        threading.Thread(target=self.sms.serve_forever, daemon=True).start()
        self._extra = itertools.count(2)

    def start(self) -> None:
        self.mail.start()
        self.platform.start_all(own_sinks=True)

    def start_extra(self, role: str) -> str:
        """Another notifications worker or beat, beside the ones running; returns its name."""
        name = f"notifications-{role}-{next(self._extra)}"
        command = self.platform.command(f"notifications-{role}")
        if role == "beat":
            command[command.index("--schedule") + 1] = str(self.platform.workdir / name)
        log = open(self.platform.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with it
        self.platform.processes[name] = subprocess.Popen(
            command, cwd=REPO, env=self.platform.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        if role == "worker":
            self.platform.wait_log(name, "ready.")
        return name

    def kill(self, name: str) -> None:
        """SIGKILL, as the kernel's OOM killer or a pulled plug would."""
        self.platform.stop(name, signal.SIGKILL)

    def close(self) -> None:
        try:
            self.platform.close()
        finally:
            self.mail.stop()
            self.sms.shutdown()


def running_platform(workdir: Path, **options):
    """A started ``ReminderPlatform`` for a fixture to yield; each process's log is printed when
    it does not start, and everything stops when the fixture ends."""
    world = ReminderPlatform(workdir, **options)
    try:
        world.start()
    except Exception:
        for name in world.platform.processes:
            print(f"----- {name} -----\n{world.platform.log(name)[-3000:]}")
        world.close()
        raise
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def reminders(tmp_path_factory):
    yield from running_platform(tmp_path_factory.mktemp("reminders"))


# -- the people and their stories ---------------------------------------------------------------

class Users:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._clients: dict[str, ApiClient] = {}

    def __getitem__(self, username: str) -> ApiClient:
        if username not in self._clients:
            self._clients[username] = self.platform.as_user(username)
        return self._clients[username]


def person(**contact) -> dict:
    n = next(_counter)
    return {
        "given_name": f"Samira{n}", "family_name": "Nouri",
        "birth_date": date(date.today().year - 22, 4, 5).isoformat(),
        "residence_status": "aufenthaltsgestattung", "languages": ["fa", "de"],
        "contact": {"email": f"samira.{uuid.uuid4().hex[:10]}@example.org",
                    "phone": "+491701234567", "preferred_channel": "email", "language": "fa",
                    **contact},
    }


@dataclass
class Booking:
    participant: dict
    referral: dict
    appointment: dict

    @property
    def email(self) -> str:
        return self.participant["contact"]["email"]

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.appointment["start"])

    @property
    def appointment_id(self) -> str:
        return self.appointment["id"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def refer(users: Users, **contact) -> tuple[dict, dict]:
    """The JMD case worker registers a participant, records consent and refers them to the
    Caritas."""
    jmd = users["cw.jmd-leverkusen"]
    created = jmd.post("/api/v1/participants", json=person(**contact))
    assert created.status_code == 201, created.text
    participant = created.json()
    consent = jmd.post(f"/api/v1/participants/{participant['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["identity", "languages"],
        "purpose": "referral", "valid_until": (date.today() + timedelta(days=90)).isoformat()})
    assert consent.status_code == 201, consent.text
    referral = jmd.post("/api/v1/referrals", json={
        "participant_id": participant["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course"})
    assert referral.status_code == 201, referral.text
    return participant, referral.json()


def book(users: Users, *, start: datetime | timedelta, minutes: int = 60,
         mode: str = "in_person", **contact) -> Booking:
    """…and the Caritas case worker books the appointment; a ``timedelta`` start counts from
    the booking itself, after the registration, consent and referral before it (which a crowded
    machine can stretch by seconds)."""
    participant, referral = refer(users, **contact)
    if isinstance(start, timedelta):
        start = now() + start
    booked = users["cw.caritas-leverkusen"].post(
        f"/api/v1/referrals/{referral['id']}/appointments",
        json={"start": iso(start), "end": iso(start + timedelta(minutes=minutes)),
              "mode": mode, "location": "Caritas, Raum 2"})
    assert booked.status_code == 201, booked.text
    return Booking(participant, referral, booked.json())


def reminders_of(client: ApiClient, appointment_id: str) -> list[dict]:
    response = client.get("/api/v1/reminders", params={"appointment_id": appointment_id})
    assert response.status_code == 200, response.text
    return response.json()


def wait_reminders(client: ApiClient, appointment_id: str, *, count: int,
                   timeout: float = 30, **match) -> list[dict]:
    """The appointment's reminders once ``count`` of them match ``match``; if they never do, the
    error names what they were instead (status, reason, attempts)."""
    seen: list[dict] = []

    def ready():
        seen[:] = reminders_of(client, appointment_id)
        matching = [r for r in seen if all(r.get(k) == v for k, v in match.items())]
        return seen if len(matching) >= count else None

    try:
        return wait_for(ready, timeout=timeout, what=f"{count} reminders like {match}",
                        interval=0.3)
    except TimeoutError as error:
        found = [{k: r.get(k) for k in ("recipient", "offset_seconds", "status", "reason",
                                         "attempts", "channel", "due_at")} for r in seen]
        raise TimeoutError(f"{error}; the reminders were {found}") from None


def patch_appointment(client: ApiClient, appointment_id: str, body: dict):
    path = f"/api/v1/appointments/{appointment_id}"
    etag = client.get(path).headers["ETag"]
    return client.patch(path, json=body, headers={"If-Match": etag})


def inbox(client: ApiClient, **params) -> list[dict]:
    response = client.get("/api/v1/notifications", params={"page_size": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()


def sql(platform: Platform, service: str, statement: str, **params) -> list[tuple]:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def same_id(a, b) -> bool:
    return str(uuid.UUID(str(a))) == str(uuid.UUID(str(b)))


def maildir_messages(platform: Platform) -> list[EmailMessage]:
    """What the platform's own SMTP sink (``buendnis_dev.smtp``) has received."""
    folder = Path(platform.env["BUENDNIS_VAR"]) / "mail" / "new"
    if not folder.exists():
        return []
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(folder.iterdir())]


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def now() -> datetime:
    return datetime.now(UTC)


def sleep_until(moment: datetime) -> None:
    delay = (moment - now()).total_seconds()
    if delay > 0:
        time.sleep(delay)
