"""Proof that nothing leaks: every demo user × every operation of the merged API document ×
records owned by another organisation → the expected status, and no body with their data.

The operations come from the served document, so a new endpoint cannot escape the matrix: it
fails here until this file knows how to call it (an example body, its path parameters) and what
others must get."""
from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from buendnis_common import policy
from tests.intake.conftest import person
from tests.test_gateway_identity import DEMO_USERS

pytestmark = pytest.mark.platform

OWNER = "cw.jmd-leverkusen"          # registers the participant, sends the referral
RECEIVER = "cw.caritas-leverkusen"   # receives it
PROVIDER = "cw.caritas-leverkusen"   # provides the offer
LEVERKUSEN = {u for u, (_, _, alliance, _) in DEMO_USERS.items() if alliance == "leverkusen"}


def soon(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(days=3, hours=hours)).isoformat()


# A valid request body for every operation that takes one: access must be decided on the
# record, not on a body that fails validation first.
BODIES = {
    ("/api/v1/participants", "POST"): lambda r: person(),
    ("/api/v1/participants/import", "POST"): None,  # multipart; see FILES
    ("/api/v1/participants/{}", "PATCH"): lambda r: {"municipality": "Köln"},
    ("/api/v1/participants/{}/needs", "POST"): lambda r: {"category": "housing"},
    ("/api/v1/participants/{}/needs/{}", "PATCH"): lambda r: {"status": "met"},
    ("/api/v1/participants/{}/consents", "POST"): lambda r: {
        "recipient_org": "awo-leverkusen", "data_categories": ["contact"],
        "valid_until": (date.today() + timedelta(days=30)).isoformat()},
    ("/api/v1/offers", "POST"): lambda r: {"title": "Nachhilfe",
                                           "category": "school_qualification"},
    ("/api/v1/offers/{}", "PATCH"): lambda r: {"capacity": 1},
    ("/api/v1/referrals", "POST"): lambda r: {
        "participant_id": r["participant_id"], "to_org": "awo-leverkusen",
        "need_category": "counselling"},
    ("/api/v1/referrals/{}/status", "POST"): lambda r: {"status": "cancelled", "reason": "test"},
    ("/api/v1/referrals/{}/messages", "POST"): lambda r: {"text": "Rückruf bitte"},
    ("/api/v1/referrals/{}/appointments", "POST"): lambda r: {
        "start": soon(1), "end": soon(2), "mode": "phone"},
    ("/api/v1/appointments/{}", "PATCH"): lambda r: {"start": soon(3), "end": soon(4)},
    ("/api/v1/notifications/{}/read", "POST"): lambda r: None,
    ("/api/v1/notifications/preferences", "PUT"): lambda r: {"email_copies": {}},
}

# Path parameters → the record of the owner it stands for.
PARAMETERS = {
    "participant_id": "participant_id", "need_id": "need_id", "consent_id": "consent_id",
    "offer_id": "offer_id", "referral_id": "referral_id", "appointment_id": "appointment_id",
    "entry_id": "notification_id", "notification_id": "notification_id",
    "import_id": "import_id",
}

# Query parameters that point a list at the owner's record.
QUERIES = {
    "/api/v1/participants": lambda r: {"q": r["given_name"]},
    "/api/v1/referrals": lambda r: {"participant_id": r["participant_id"]},
    "/api/v1/reminders": lambda r: {"appointment_id": r["appointment_id"]},
    "/api/v1/offers": lambda r: {"participant_id": r["participant_id"]},
    "/api/v1/audit": lambda r: {"participant_id": r["participant_id"]},
}


def parties(template: str) -> set[str]:
    """Who may see the records behind this path (and so is not tested as an outsider)."""
    if template.startswith("/api/v1/participants"):
        return {OWNER}
    if template.startswith(("/api/v1/referrals", "/api/v1/appointments", "/api/v1/reminders")):
        return {OWNER, RECEIVER}
    if template.startswith("/api/v1/notifications/{"):
        return {RECEIVER}
    if template.startswith("/api/v1/offers/{"):
        return {PROVIDER}
    return set()


def expected(template: str, method: str, username: str, allowed: set[str],
             query: dict | None = None) -> set[int]:
    roles = set(DEMO_USERS[username][3])
    if not roles & allowed:
        return {403}
    # A query parameter that makes a list a read of a person's data (the shared policy's
    # QUERY_POLICY: offers matched to a participant) needs its own role.
    for parameter, needed in policy.QUERY_POLICY.get((template, method), {}).items():
        if parameter in (query or {}) and not roles & needed:
            return {403}
    if template.startswith("/api/v1/offers/{"):
        same_alliance = username in LEVERKUSEN
        if method == "GET":
            return {200} if same_alliance else {404}
        return {403} if same_alliance else {404}  # only the provider changes its offer
    if "{" in template:
        return {404}
    if method == "POST":  # creating something that points at the owner's record
        return {404, 422} if template == "/api/v1/referrals" else {201, 200}
    return {200, 404}  # a list: empty of the owner's records, or the filter's record unknown


@pytest.fixture(scope="module")
def records(platform):
    """A participant (with need and consent), a referral to Caritas with a message and an
    appointment, an offer of Caritas and an inbox entry of Caritas: each owned by someone."""
    owner = platform.as_user(OWNER)
    receiver = platform.as_user(RECEIVER)
    body = person(given_name="Zeynep-Matrix", family_name="Matrixperson",
                  contact={"phone": "+4917699887766", "email": "matrix@example.org"})
    participant = owner.post("/api/v1/participants", json=body).json()
    consent = owner.post(f"/api/v1/participants/{participant['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["contact", "needs"],
        "valid_until": (date.today() + timedelta(days=60)).isoformat()}).json()
    offer = receiver.post("/api/v1/offers", json={
        "title": "Matrix-Angebot", "category": "language_course"}).json()
    referral = owner.post("/api/v1/referrals", json={
        "participant_id": participant["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course", "note": "Sehr vertraulicher Hinweis"})
    assert referral.status_code == 201, referral.text
    referral = referral.json()
    assert owner.post(f"/api/v1/referrals/{referral['id']}/messages",
                      json={"text": "Geheime Absprache"}).status_code == 201
    appointment = receiver.post(f"/api/v1/referrals/{referral['id']}/appointments", json={
        "start": soon(5), "end": soon(6), "mode": "in_person",
        "location": "Beratungsraum 7"}).json()
    # A list too long to import in the request: the worker checks it (and, every row wrong,
    # imports nothing); its status and row report are the owner's.
    rows = "\n".join(["Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus"] + [
        f"Geheimimport{n};Matrixliste;31.02.2003;duldung" for n in range(1_001)])
    queued = owner.post("/api/v1/participants/import", data={"mode": "all_or_nothing"},
                        files={"file": ("matrix.csv", rows.encode(), "text/csv")})
    assert queued.status_code == 202, queued.text
    inbox: list = []
    for _ in range(100):  # the inbox entry arrives through events
        answer = receiver.get("/api/v1/notifications")
        inbox = answer.json() if answer.status_code == 200 else []
        if inbox:
            break
        time.sleep(0.2)
    return {
        "participant_id": participant["id"], "need_id": participant["needs"][0]["id"],
        "consent_id": consent["id"], "offer_id": offer["id"], "referral_id": referral["id"],
        "appointment_id": appointment["id"],
        "notification_id": inbox[0]["id"] if inbox else None,
        "import_id": queued.json()["id"],
        "given_name": participant["given_name"],
        # What must never reach anyone but the owner (and, where consented, the receiver).
        "secrets": [participant["given_name"], "Matrixperson", "+4917699887766",
                    "matrix@example.org", "Sehr vertraulicher Hinweis", "Geheime Absprache",
                    "Beratungsraum 7", participant["pseudonym"], "Geheimimport",
                    "Matrixliste"],
    }


@pytest.fixture(scope="module")
def document(platform):
    return requests.get(f"{platform.gateway_url}/api/openapi.json", timeout=30).json()


def operations(document) -> list[tuple[str, str, set[str]]]:
    found = []
    for path, entries in document["paths"].items():
        for method, operation in entries.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((path, method.upper(), set(operation.get("x-roles", []))))
    return found


def test_every_documented_operation_is_reachable_and_known_to_the_matrix(document):
    for path, method, allowed in operations(document):
        assert allowed, f"{method} {path} has no role policy at the gateway"
        template = re.sub(r"\{[^}]+\}", "{}", path)
        if method in ("POST", "PUT", "PATCH"):
            assert (template, method) in BODIES, f"the matrix has no example body for {method} "\
                f"{path}: add one to BODIES"
        for name in re.findall(r"\{([^}]+)\}", path):
            assert name in PARAMETERS, f"the matrix does not know path parameter {name} of {path}"


@pytest.mark.parametrize("username", sorted(DEMO_USERS))
def test_nobody_reaches_another_organisations_records(platform, records, document, username):
    client = platform.as_user(username)
    failures = []
    for path, method, allowed in operations(document):
        template = re.sub(r"\{[^}]+\}", "{}", path)
        if username in parties(template):
            continue
        names = re.findall(r"\{([^}]+)\}", path)
        values = [records[PARAMETERS[name]] for name in names]
        if None in values:
            continue  # e.g. no inbox entry arrived; the inbox has tests of its own
        url = re.sub(r"\{[^}]+\}", "{}", path).format(*values)
        kwargs: dict = {"headers": {"If-Match": '"stale"'}}
        if method in ("POST", "PUT", "PATCH"):
            if template == "/api/v1/participants/import":
                kwargs["files"] = {"file": ("x.csv", b"given_name;family_name;birth_date;"
                                           b"residence_status\n", "text/csv")}
            else:
                make = BODIES[(template, method)]
                body = make(records) if make else None
                if body is not None:
                    kwargs["json"] = body
        elif method == "GET" and path in QUERIES:
            kwargs["params"] = QUERIES[path](records)
        response = client.request(method, url, **kwargs)
        want = expected(template, method, username, allowed, kwargs.get("params"))
        if response.status_code not in want:
            failures.append(f"{method} {url}: {response.status_code}, expected {sorted(want)}")
        leaked = [s for s in records["secrets"] if s in response.text]
        if leaked:
            failures.append(f"{method} {url}: the body contains {leaked}")
    assert not failures, "\n".join(failures)
