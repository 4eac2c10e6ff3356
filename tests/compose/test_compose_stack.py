"""The production stack, started: `make test-compose`.

docker-compose.yml (with only Keycloak and Mailpit replaced by docker-compose.ci.yml) is brought
up with podman from the one image and local stand-ins of the public base images
(infra/compose/stack.py), and the whole story is walked through the gateway on its published port
as a client outside the stack would: register, consent, refer, accept, book, the reminder e-mail in
the sink, the core group's report, the organisation directory (read from the realm file in the
image), the web front end's sign-in page; then the audit chain is verified inside the gateway's
container and the stack is removed with its volumes.

It runs only when asked (BUENDNIS_COMPOSE_TEST=1, as `make test-compose` does): it needs podman
and root, and takes minutes.
"""
from __future__ import annotations

import importlib.util
import mailbox
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

pytestmark = [
    pytest.mark.skipif(os.environ.get("BUENDNIS_COMPOSE_TEST") != "1",
                       reason="make test-compose runs the compose stack"),
    # From scratch the first test's setup builds every image (debootstrap, the wheels): about ten
    # minutes on a loaded two-core machine, beyond the suite's 600 s per test.
    pytest.mark.timeout(1500),
]

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("stack", ROOT / "infra" / "compose" / "stack.py")
stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stack)

GATEWAY = "http://127.0.0.1:8000"
IDP = "http://127.0.0.1:8080"
WEB = "http://127.0.0.1:8090"
PERSON = {"given_name": "Composia", "family_name": "Stackwell",
          "email": "composia.stackwell@compose-test.example"}


@pytest.fixture(scope="module")
def running():
    began = time.monotonic()
    try:
        times = stack.up()
    except SystemExit as cannot:  # podman cannot run here: say why, fail
        pytest.fail(str(cannot.code), pytrace=False)
    except BaseException:  # pytest-timeout's and Ctrl-C's too: never leave the stack running
        print(stack.logs(60))
        stack.down()
        raise
    yield times
    try:
        if os.environ.get("BUENDNIS_COMPOSE_KEEP") != "1":
            stack.down()
    finally:
        print(f"\ncompose: images {times['build']:.0f} s, up to healthy "
              f"{times['up_to_healthy']:.0f} s, whole run {time.monotonic() - began:.0f} s",
              flush=True)


def token(username: str) -> str:
    answer = requests.post(
        f"{IDP}/realms/buendnis/protocol/openid-connect/token", timeout=30,
        data={"grant_type": "password", "client_id": "buendnis-cli", "username": username,
              "password": "demo"})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def client(username: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(username)}"
    return session


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def mails() -> list[str]:
    """Every message in the SMTP sink's Maildir, read inside its container."""
    name = stack.container_name("mailpit")
    listing = stack.run("podman", "exec", name, "sh", "-c",
                        "cat /var/lib/buendnis/mail/new/* 2>/dev/null; true", capture=True)
    return [listing.stdout] if listing.stdout else []


def test_the_whole_story_through_the_gateway(running):
    jmd, caritas = client("cw.jmd-leverkusen"), client("cw.caritas-leverkusen")
    # Without a token the gateway answers 401: it is the production gateway, not an open one.
    assert requests.get(f"{GATEWAY}/api/v1/participants", timeout=30).status_code == 401

    created = jmd.post(f"{GATEWAY}/api/v1/participants", timeout=60, json={
        "given_name": PERSON["given_name"], "family_name": PERSON["family_name"],
        "birth_date": "2004-05-06", "residence_status": "duldung", "languages": ["de"],
        "municipality": "Leverkusen",
        "contact": {"email": PERSON["email"], "preferred_channel": "email", "language": "de"},
        "needs": [{"category": "language_course"}]})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    consent = jmd.post(f"{GATEWAY}/api/v1/participants/{pid}/consents", timeout=60, json={
        "recipient_org": "caritas-leverkusen",
        "data_categories": ["identity", "contact", "languages"], "purpose": "referral",
        "valid_until": (date.today() + timedelta(days=90)).isoformat()})
    assert consent.status_code == 201, consent.text
    referral = jmd.post(f"{GATEWAY}/api/v1/referrals", timeout=60, json={
        "participant_id": pid, "to_org": "caritas-leverkusen",
        "need_category": "language_course"})
    assert referral.status_code == 201, referral.text
    rid = referral.json()["id"]
    # Another organisation sees nothing of it.
    assert client("cw.stadt-meerbusch").get(
        f"{GATEWAY}/api/v1/referrals/{rid}", timeout=30).status_code in (403, 404)
    accepted = caritas.post(f"{GATEWAY}/api/v1/referrals/{rid}/status", timeout=60,
                            json={"status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    seen = caritas.get(f"{GATEWAY}/api/v1/referrals/{rid}", timeout=30)
    assert seen.status_code == 200 and PERSON["family_name"] in seen.text
    # The reminder offset is 20 s in the test's .env: due 25 s from now.
    start = datetime.now(UTC) + timedelta(seconds=45)
    booked = caritas.post(f"{GATEWAY}/api/v1/referrals/{rid}/appointments", timeout=60, json={
        "start": iso(start), "end": iso(start + timedelta(hours=1)), "mode": "in_person",
        "location": "Caritas, Raum 2"})
    assert booked.status_code == 201, booked.text

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        found = [m for m in mails() if PERSON["email"] in m]
        if found:
            break
        time.sleep(3)
    else:
        print(stack.logs(40))
        pytest.fail("no reminder e-mail reached the SMTP sink")
    message = mailbox.mboxMessage(found[0])
    assert "Caritas" in found[0] or message["To"], found[0][:500]

    # The core group's report of its own alliance.
    report = client("core.caritas-leverkusen").get(f"{GATEWAY}/api/v1/reports/referrals",
                                                    timeout=60)
    assert report.status_code == 200, report.text
    assert report.json()["alliance"] == "leverkusen"

    # The organisation directory: from the realm file in the image (the old images had none).
    organisations = jmd.get(f"{GATEWAY}/api/v1/organizations", timeout=30)
    assert organisations.status_code == 200, organisations.text
    assert "caritas-leverkusen" in organisations.text

    # The web front end sends the browser to the identity provider's login page.
    login = requests.get(f"{WEB}/anmelden", timeout=30, allow_redirects=False)
    assert login.status_code in (302, 303), login.status_code
    assert login.headers["Location"].startswith(
        "http://localhost:8080/realms/buendnis/protocol/openid-connect/auth"), login.headers
    assert requests.get(login.headers["Location"].replace("localhost", "127.0.0.1"),
                        timeout=30).status_code == 200


def test_the_audit_chain_is_intact(running):
    gateway = stack.container_name("gateway")
    deadline = time.monotonic() + 90
    while True:
        verdict = stack.run("podman", "exec", gateway, "python", "-m", "gateway.audit", "verify",
                            capture=True, check=False)
        print(verdict.stdout, verdict.stderr)
        if verdict.returncode == 0 and " 0 entries" not in verdict.stdout:
            break
        assert time.monotonic() < deadline, verdict.stdout + verdict.stderr
        time.sleep(5)
    assert verdict.stdout.startswith("audit trail intact:"), verdict.stdout
