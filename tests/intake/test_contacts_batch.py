"""The batch contact route (``POST /internal/participants/contacts``): the notifications
dispatcher asks for many participants at once, and learns of each exactly what the single route
``/internal/participants/<id>/contact`` would tell it — only while that person's consent for
the appointment's organisation holds now — and nobody else may ask at all."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import requests

from tests.intake.conftest import person, sql
from tests.intake.test_consent_and_sharing import grant
from tests.support.platform import SERVICES

pytestmark = pytest.mark.platform

CARITAS = "caritas-leverkusen"


def batch(platform, pairs, *, token: str | None = None) -> requests.Response:
    token = token or platform.service_token("notifications")
    return requests.post(
        f"{platform.service_urls['intake']}/internal/participants/contacts",
        json={"participants": [{"participant_id": pid, "recipient_org": org}
                               for pid, org in pairs]},
        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def single(platform, participant_id: str, recipient_org: str) -> dict:
    answer = requests.get(
        f"{platform.service_urls['intake']}/internal/participants/{participant_id}/contact",
        params={"recipient_org": recipient_org}, timeout=30,
        headers={"Authorization": f"Bearer {platform.service_token('notifications')}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def contact_entries(platform, participant_id: str) -> int:
    rows = sql(platform, "intake", "SELECT participant_id FROM audit_log "
               "WHERE action = 'participant.contact'")
    return sum(1 for (pid,) in rows if str(uuid.UUID(str(pid))) == participant_id)


@pytest.fixture
def people(platform, jmd, caritas):
    """Four participants of the JMD and one of the Caritas: consent for the Caritas that holds,
    one withdrawn, one past its last day, none; and the Caritas's own with consent for the
    JMD."""
    made = {}
    for name in ("holds", "withdrawn", "expired", "none"):
        created = jmd.post("/api/v1/participants", json=person(
            given_name=f"Batch{name.title()}", contact={
                "phone": "+4917699887766", "email": f"batch.{name}@example.org",
                "preferred_channel": "email", "language": "ar"}))
        assert created.status_code == 201, created.text
        made[name] = created.json()
    for name in ("holds", "withdrawn", "expired"):
        assert grant(jmd, made[name]["id"]).status_code == 201
    consent = jmd.get(f"/api/v1/participants/{made['withdrawn']['id']}/consents").json()[0]
    withdrawn = jmd.delete(f"/api/v1/participants/{made['withdrawn']['id']}/consents/"
                           f"{consent['id']}")
    assert withdrawn.status_code == 204
    # Its last valid day was yesterday (no sweep needed: the route checks at the moment of use).
    sql(platform, "intake", "UPDATE consents SET valid_until = :day WHERE participant_id = :pid",
        day=date.today() - timedelta(days=1),
        pid=made["expired"]["id"] if platform.postgres else uuid.UUID(made["expired"]["id"]).hex)
    theirs = caritas.post("/api/v1/participants", json=person(
        given_name="BatchTheirs", contact={"email": "batch.theirs@example.org"}))
    assert theirs.status_code == 201, theirs.text
    made["theirs"] = theirs.json()
    assert grant(caritas, made["theirs"]["id"], recipient="jmd-leverkusen").status_code == 201
    return made


def test_the_batch_says_of_each_person_what_the_single_route_says_and_no_more(platform,
                                                                              people):
    ids = {name: p["id"] for name, p in people.items()}
    unknown = str(uuid.uuid4())
    pairs = [(ids["holds"], CARITAS), (ids["withdrawn"], CARITAS), (ids["expired"], CARITAS),
             (ids["none"], CARITAS), (ids["holds"], "awo-leverkusen"),
             (ids["theirs"], "jmd-leverkusen"), (ids["theirs"], CARITAS), (unknown, CARITAS)]
    answer = batch(platform, pairs)
    assert answer.status_code == 200, answer.text
    found = {(a["participant_id"], a["recipient_org"]): a for a in answer.json()["participants"]}
    # An id intake does not know is left out; every other pair is answered once.
    assert set(found) == set(pairs) - {(unknown, CARITAS)}

    reached = found[(ids["holds"], CARITAS)]
    assert reached["consent"] is True and reached["owner_org"] == "jmd-leverkusen"
    assert reached["given_name"] == "BatchHolds"
    assert reached["contact"]["email"] == "batch.holds@example.org"
    # Consent withdrawn, past its last day, never given, or given to another organisation:
    # the person is named by id only — no name, no address, no number.
    for name, org in (("withdrawn", CARITAS), ("expired", CARITAS), ("none", CARITAS),
                      ("holds", "awo-leverkusen")):
        refused = found[(ids[name], org)]
        assert refused == {"participant_id": ids[name], "recipient_org": org,
                           "owner_org": "jmd-leverkusen", "consent": False}, (name, org)
    for name in ("withdrawn", "expired", "none"):
        assert f"Batch{name.title()}" not in answer.text
        assert f"batch.{name}@example.org" not in answer.text
    # The one person reached, once (not for the organisation without a consent).
    assert answer.text.count("batch.holds@example.org") == 1
    assert answer.text.count("+4917699887766") == 1
    # Another organisation's participant: exactly what the single route gives (its owner, for
    # the dispatcher to compare with the referral's sender), and only under its consent.
    assert found[(ids["theirs"], CARITAS)]["consent"] is False
    assert found[(ids["theirs"], CARITAS)]["owner_org"] == CARITAS
    for (pid, org), item in found.items():
        alone = single(platform, pid, org)
        assert {k: v for k, v in item.items() if k != "recipient_org"} == {
            k: v for k, v in alone.items() if k != "pseudonym"}, (pid, org)


def test_each_person_reached_is_in_the_audit_log_and_nobody_else(platform, people):
    ids = {name: p["id"] for name, p in people.items()}
    answer = batch(platform, [(ids["holds"], CARITAS), (ids["withdrawn"], CARITAS),
                              (ids["none"], CARITAS)])
    assert answer.status_code == 200, answer.text
    assert contact_entries(platform, ids["holds"]) == 1
    assert contact_entries(platform, ids["withdrawn"]) == 0
    assert contact_entries(platform, ids["none"]) == 0


def test_only_the_notifications_service_may_ask(platform, people):
    pairs = [(people["holds"]["id"], CARITAS)]
    for service in SERVICES:
        answer = batch(platform, pairs, token=platform.service_token(service))
        if service == "notifications":
            assert answer.status_code == 200, answer.text
            continue
        assert answer.status_code == 403, (service, answer.text)
        assert answer.json()["message"] == "This endpoint is for the notifications service only."
        assert "batch.holds" not in answer.text
    # A person's token sent straight to intake, whatever the roles, and no token at all.
    for username in ("cw.jmd-leverkusen", "coord.leverkusen", "audit.jmd-leverkusen"):
        answer = batch(platform, pairs, token=platform.token(username))
        assert answer.status_code == 403, (username, answer.text)
        assert "batch.holds" not in answer.text
    anonymous = requests.post(
        f"{platform.service_urls['intake']}/internal/participants/contacts",
        json={"participants": [{"participant_id": pairs[0][0], "recipient_org": CARITAS}]},
        timeout=30)
    assert anonymous.status_code == 401
    # The gateway does not route internal paths at all.
    through_gateway = requests.post(
        f"{platform.gateway_url}/internal/participants/contacts",
        json={"participants": []}, timeout=30,
        headers={"Authorization": f"Bearer {platform.service_token('notifications')}"})
    assert through_gateway.status_code in (401, 403, 404)
    assert "batch.holds" not in through_gateway.text


def test_a_malformed_or_oversized_batch_is_refused(platform):
    many = [(str(uuid.uuid4()), CARITAS) for _ in range(501)]
    assert batch(platform, many).status_code == 422
    assert batch(platform, [("not-an-id", CARITAS)]).status_code == 422
    assert batch(platform, [(str(uuid.uuid4()), " ")]).status_code == 422
    empty = batch(platform, [])
    assert empty.status_code == 200 and empty.json() == {"participants": []}
