"""No personal data in any log: a whole story through the gateway, then every log line searched.

Participants with distinctive names, phone numbers and e-mail addresses are registered, consent,
are referred, accepted, booked and reminded (e-mail and SMS); a form with a name in a wrong field
is refused, a list is imported (with a bad row), people are searched by name, an appointment is
moved, a participant exported and erased. Afterwards the log file of every process of the
platform (gateway, services, their Celery workers and beats, identity provider, Redis) is searched
for each name, number and address: none may appear.
"""
from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
import requests

from tests.notifications.conftest import (
    ReminderPlatform,
    Users,
    iso,
    now,
    patch_appointment,
    wait_reminders,
)
from tests.support.platform import PATIENCE

pytestmark = pytest.mark.platform

ADULT = date(date.today().year - 22, 4, 5).isoformat()

# Made-up people whose every detail is distinctive enough to be found anywhere.
ZEPHYRINE = {
    "given_name": "Zephyrine", "family_name": "Quillfeatherova",
    "phone": "+4917055512399", "email": "zephyrine.quill@leakcheck.example",
}
BARNABY = {
    "given_name": "Barnabetto", "family_name": "Vexlingworth",
    "phone": "+4915199988877", "email": "barnabetto.vex@leakcheck.example",
}
ORSOLYA = {  # only ever in refused input
    "given_name": "Orsolyandra", "family_name": "Krumpelnikova",
    "phone": "+4916044433322", "email": "orsolyandra.krump@leakcheck.example",
}
IMPORTED = {"given_name": "Hieronyma", "family_name": "Plumtrewski", "phone": "+4917766655544"}
BAD_ROW = {"given_name": "Ludovicka", "family_name": "Snarrowby", "phone": "0176-nonsense"}
PEOPLE = (ZEPHYRINE, BARNABY, ORSOLYA, IMPORTED, BAD_ROW)


def needles() -> list[str]:
    """Every name, number (also without its +, and its national part) and address."""
    found = []
    for person in PEOPLE:
        for key, value in person.items():
            found.append(value)
            if key == "phone" and value.startswith("+49"):
                found += [value[1:], value[3:]]
            if key == "email":
                found.append(value.split("@")[0])
    return found


# The story needs its reminders sent, not sent on the second: offsets wide enough that a reminder
# dispatched late on a crowded machine (or retried once after a slow sink) still goes out before
# the appointment begins. The shared reminder platform's 8 s and 4 s leave a window of 4 s.
FIRST_OFFSET, SECOND_OFFSET = int(12 * PATIENCE), int(6 * PATIENCE)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # DEBUG: what an operator turns on to find a fault must not reveal anyone either.
    world = ReminderPlatform(tmp_path_factory.mktemp("log-leaks"), env={
        "LOG_LEVEL": "DEBUG", "REMINDER_OFFSETS": f"{FIRST_OFFSET}s,{SECOND_OFFSET}s"})
    try:
        world.start()  # with the front end's Redis (web-redis), apart from the broker
        world.platform.start("gateway-worker")  # the audit trail's consumer
        world.platform.start("web")
        world.platform.wait_log("gateway-worker", "ready.")
        world.platform.wait_http(f"{world.platform.web_url}/healthz")
    except Exception:
        for name in world.platform.processes:
            print(f"----- {name} -----\n{world.platform.log(name)[-3000:]}")
        world.close()
        raise
    yield world
    world.close()


def participant(person: dict, channel: str) -> dict:
    return {
        "given_name": person["given_name"], "family_name": person["family_name"],
        "birth_date": ADULT, "residence_status": "duldung", "languages": ["fa", "de"],
        "municipality": "Leverkusen",
        "contact": {"phone": person["phone"], "email": person["email"],
                    "preferred_channel": channel, "language": "de"},
        "needs": [{"category": "language_course",
                   "note": f"{person['given_name']} möchte B1 erreichen"}],
    }


class Forms(HTMLParser):
    """The forms of a page: action, method and the fields with their values."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": {},
                               "method": (attrs.get("method") or "get").lower()})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def csrf_token(page: str) -> str:
    return next(f["fields"]["csrf_token"] for f in Forms(page).forms
                if "csrf_token" in f["fields"])


def web_story(world: ReminderPlatform) -> None:
    """The same people through the web front end: sign in, search by name, a refused form."""
    web = world.platform.web_url
    browser = requests.Session()
    login_page = browser.get(f"{web}/anmelden", timeout=30)
    (form,) = [f for f in Forms(login_page.text).forms if f["method"] == "post"]
    signed_in = browser.post(form["action"], timeout=30, data={
        **form["fields"], "username": "cw.jmd-leverkusen", "password": "demo"})
    assert signed_in.status_code == 200 and "/anmelden" not in signed_in.url, signed_in.url
    listing = browser.get(f"{web}/teilnehmende/", timeout=30)
    for term in (ZEPHYRINE["family_name"], BARNABY["phone"]):
        found = browser.post(f"{web}/teilnehmende/", timeout=30,
                             data={"csrf_token": csrf_token(listing.text), "q": term})
        assert found.status_code == 200
    new = browser.get(f"{web}/teilnehmende/neu", timeout=30)
    refused = browser.post(f"{web}/teilnehmende/neu", timeout=30, data={
        "csrf_token": csrf_token(new.text), "given_name": ORSOLYA["given_name"],
        "family_name": ORSOLYA["family_name"], "birth_date": "31.02.2003",
        "residence_status": "duldung", "contact.phone": f"{ORSOLYA['phone']} x",
        "contact.email": f"{ORSOLYA['email']} x"})
    assert refused.status_code == 422, refused.status_code


def story(world: ReminderPlatform) -> None:
    users = Users(world.platform)
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]

    # Register, consent (contact included), refer, accept, book.
    bookings = []
    for person, channel in ((ZEPHYRINE, "sms"), (BARNABY, "email")):
        created = jmd.post("/api/v1/participants", json=participant(person, channel))
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        consent = jmd.post(f"/api/v1/participants/{pid}/consents", json={
            "recipient_org": "caritas-leverkusen",
            "data_categories": ["identity", "contact", "languages"], "purpose": "referral",
            "valid_until": (date.today() + timedelta(days=90)).isoformat()})
        assert consent.status_code == 201, consent.text
        referral = jmd.post("/api/v1/referrals", json={
            "participant_id": pid, "to_org": "caritas-leverkusen",
            "need_category": "language_course",
            "note": f"{person['given_name']} {person['family_name']}, {person['phone']}"})
        assert referral.status_code == 201, referral.text
        rid = referral.json()["id"]
        assert caritas.post(f"/api/v1/referrals/{rid}/status",
                            json={"status": "accepted"}).status_code == 200
        seen = caritas.get(f"/api/v1/referrals/{rid}")
        assert person["family_name"] in seen.text  # the receiver sees what was consented
        # Room for the second person's story before the first one's reminders fall due, on a
        # crowded machine too.
        start = now() + timedelta(seconds=FIRST_OFFSET + 8 * PATIENCE)
        booked = caritas.post(f"/api/v1/referrals/{rid}/appointments", json={
            "start": iso(start), "end": iso(start + timedelta(hours=1)), "mode": "in_person",
            "location": "Caritas, Raum 2", "note": f"Mit {person['given_name']}"})
        assert booked.status_code == 201, booked.text
        bookings.append((pid, booked.json()["id"]))
        message = jmd.post(f"/api/v1/referrals/{rid}/messages",
                           json={"text": f"{person['given_name']} ruft an: {person['phone']}"})
        assert message.status_code in (200, 201), message.text

    # Forms refused with the names in the bad input.
    wrong = participant(ORSOLYA, "email")
    wrong["birth_date"] = f"{ORSOLYA['given_name']} 31.02.2003"
    wrong["contact"]["email"] = f"{ORSOLYA['given_name']} {ORSOLYA['email']}"
    wrong["contact"]["phone"] = f"{ORSOLYA['family_name']} {ORSOLYA['phone']}"
    assert jmd.post("/api/v1/participants", json=wrong).status_code == 422
    wrong_type = {**participant(ORSOLYA, "email"), "languages": ORSOLYA["family_name"]}
    assert jmd.post("/api/v1/participants", json=wrong_type).status_code == 422
    pid = bookings[0][0]
    etag = jmd.get(f"/api/v1/participants/{pid}").headers["ETag"]
    patched = jmd.patch(f"/api/v1/participants/{pid}", headers={"If-Match": etag},
                        json={"contact": {"phone": f"{ORSOLYA['phone']} {ORSOLYA['email']}"}})
    assert patched.status_code == 422, patched.text
    # The same person again (the duplicate hint compares keyed hashes).
    again = jmd.post("/api/v1/participants", json=participant(ZEPHYRINE, "sms"))
    assert again.status_code in (201, 409), again.text

    # An import with one good and one bad row, all or nothing (refused), then valid rows only.
    header = "Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus;Telefon"
    rows = [f"{IMPORTED['given_name']};{IMPORTED['family_name']};{ADULT};duldung;"
            f"{IMPORTED['phone']}",
            f"{BAD_ROW['given_name']};{BAD_ROW['family_name']};31.02.2003;visa;"
            f"{BAD_ROW['phone']}"]
    content = "\n".join([header, *rows]).encode("utf-8-sig")
    refused = jmd.post("/api/v1/participants/import",
                       files={"file": ("liste.csv", io.BytesIO(content), "text/csv")})
    assert refused.status_code == 422, refused.text
    imported = jmd.post("/api/v1/participants/import", data={"mode": "valid_rows"},
                        files={"file": ("liste.csv", io.BytesIO(content), "text/csv")})
    assert imported.status_code in (201, 202), imported.text

    # Searches by name, number and address (query strings reach every access log).
    for term in (ZEPHYRINE["family_name"], IMPORTED["given_name"], BARNABY["email"],
                 ORSOLYA["family_name"]):
        assert jmd.get("/api/v1/participants", params={"q": term}).status_code == 200

    # Reminders sent (SMS to one, e-mail to the other), an appointment moved.
    for _pid, appointment_id in bookings:
        wait_reminders(jmd, appointment_id, count=4, status="sent", timeout=60)
    moved = patch_appointment(caritas, bookings[1][1], {
        "start": iso(now() + timedelta(days=2)),
        "end": iso(now() + timedelta(days=2, hours=1))})
    assert moved.status_code == 200, moved.text

    # Art. 15 export and erasure of one participant.
    assert jmd.get(f"/api/v1/participants/{bookings[1][0]}/export").status_code == 200
    erased = jmd.delete(f"/api/v1/participants/{bookings[1][0]}")
    assert erased.status_code == 204, erased.text


def test_no_name_number_or_address_in_any_log(world):
    story(world)
    web_story(world)
    platform = world.platform
    # Let the workers finish the events of the story (erasure, audit, change notices).
    time.sleep(8)
    logs = {path.name: path.read_text(errors="replace")
            for path in sorted(platform.logs.glob("*.log"))}
    # The logs are there and were written at DEBUG while the story ran.
    assert {"gateway.log", "intake.log", "intake-worker.log", "notifications-worker.log",
            "referrals.log", "idp.log", "web.log"} <= set(logs)
    assert "POST /api/v1/participants" in logs["gateway.log"]
    leaks = []
    for name, text in logs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for needle in needles():
                if re.search(re.escape(needle), line, re.IGNORECASE):
                    leaks.append(f"{name}:{number}: {needle!r} in {line[:300]}")
    assert not leaks, "\n".join(leaks[:40])
    json_lines_name_their_process_request_and_trace(logs)


def json_lines_name_their_process_request_and_trace(logs: dict[str, str]) -> None:
    """The platform logs one JSON object per line (LOG_FORMAT unset): time, level, the process's
    role, request id and trace id, nothing else — the same lines the search above went through.
    A request's id is in the gateway's lines and in the service's that answered it."""
    import json

    request_ids: dict[str, set[str]] = {}
    for name in ("gateway.log", "intake.log", "referrals.log", "notifications.log",
                 "intake-worker.log", "referrals-worker.log", "notifications-worker.log",
                 "gateway-worker.log", "web.log"):
        parsed = [json.loads(line) for line in logs[name].splitlines() if line.startswith("{")]
        assert parsed, name
        for record in parsed:
            assert {"time", "level", "logger", "message", "role", "request_id",
                    "trace_id"} <= set(record) <= {"time", "level", "logger", "message", "role",
                                                   "request_id", "trace_id", "exc_info",
                                                   "stack_info"}, record
        role = name.removesuffix(".log")
        assert {r["role"] for r in parsed} == {role if "-" in role else f"{role}-web"}, name
        request_ids[name] = {r["request_id"] for r in parsed} - {"-"}
    assert request_ids["gateway.log"] & request_ids["intake.log"]


# -- the mechanism, directly: database errors, Celery's task records, URLs -------------------------

LOGGING_SCRIPT = r"""
import logging, sys
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from buendnis_common.db import make_engine
from buendnis_common.web import configure_logging

configure_logging("DEBUG")
log = logging.getLogger("buendnis.test")
engine = make_engine(sys.argv[1])
statements = [
    "INSERT INTO leak_check (name, born) VALUES (:name, :born)",
    "INSERT INTO leak_check (name, born) VALUES (:name, :born)",  # the same name again
    "INSERT INTO leak_check (name, born) VALUES (:born, :name)",  # a name where a date goes
]
with engine.connect() as connection:
    connection.execute(text("CREATE TEMPORARY TABLE leak_check "
                            "(name VARCHAR(40) UNIQUE, born DATE)"))
    connection.commit()
    for statement in statements:
        try:
            connection.execute(text(statement),
                               {"name": "Zephyrine Quillfeatherova", "born": "2003-04-05"})
            connection.commit()
        except SQLAlchemyError as exc:
            connection.rollback()
            log.exception("statement failed")
            logging.getLogger("celery.app.trace").error(
                "Task %(name)s[%(id)s] %(description)s: %(exc)s",
                {"name": "buendnis.event", "id": "1", "description": "raised unexpected",
                 "exc": repr(exc), "args": ["Zephyrine"], "kwargs": {}})
_succeeded = {"name": "buendnis.event", "id": "2", "runtime": 0.1,
              "return_value": {"given_name": "Zephyrine"}, "args": ["Quillfeatherova"]}
# As Celery logs it: the values also in ``extra={"data": …}`` (a JSON line must not show them).
logging.getLogger("celery.app.trace").info(
    "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s", _succeeded,
    extra={"data": dict(_succeeded)})
logging.getLogger("urllib3.connectionpool").debug(
    '%s://%s:%s "%s %s %s" %s %s', "http", "127.0.0.1", 8001, "GET",
    "/api/v1/participants?q=Quillfeatherova", "HTTP/1.1", 200, 2)
logging.getLogger("sqlalchemy.engine.Engine").info("SELECT %s", "Zephyrine")
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_database_errors_task_records_and_urls_are_logged_without_values(backend, log_format,
                                                                          tmp_path):
    import os
    import subprocess
    import sys

    if backend == "postgresql":
        url = os.environ.get("BUENDNIS_TEST_PG_URL")
        if not url:
            pytest.skip("BUENDNIS_TEST_PG_URL names no PostgreSQL server")
    else:
        url = f"sqlite:///{tmp_path / 'leak.sqlite3'}"
    result = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT, url], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "LOG_FORMAT": log_format})
    assert result.returncode == 0, result.stderr[-3000:]
    logged = result.stderr
    # What went wrong is still there to read …
    # (SQLite keeps a name in a DATE column; PostgreSQL refuses it, quoting the value.)
    assert logged.count("statement failed") == (1 if backend == "sqlite" else 2), logged
    assert "IntegrityError" in logged and "raised unexpected" in logged
    assert "GET /api/v1/participants?" in logged and "succeeded in" in logged
    # … but not whom it concerned.
    for needle in ("Zephyrine", "Quillfeatherova"):
        assert needle not in logged, logged
    if log_format == "json":
        import json

        records = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
        assert len(records) >= 4 and all("role" in r and "trace_id" in r for r in records)
