"""The role policy holds at each service's own port, not only at the gateway (issue 12, finding 1).

An attacker who reaches a service's port directly (inside the network, past the gateway) sends a
valid token of an auditor, a core-group member or a coordinator: every operation of the
service's own API document must refuse the role the gateway refuses, with the gateway's status
and message, before the view touches any record. Internal routes take only the service account of
the one service each is for, and the owner organisation is never the caller's to choose.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import date, timedelta

import pytest
import requests
from werkzeug.datastructures import MultiDict

from buendnis_common import policy
from buendnis_common.auth import Principal
from buendnis_common.web import create_flask_app
from tests.gateway.test_access_matrix import BODIES, records  # noqa: F401 - the fixture
from tests.intake.conftest import person
from tests.support.platform import SERVICES, wait_for
from tests.support.tokens import TokenForge
from tests.test_gateway_identity import DEMO_USERS

pytestmark = pytest.mark.platform

ID = re.compile(r"\{[^}]+\}")


@pytest.fixture(scope="module")
def forge(platform):
    return TokenForge(platform)


@pytest.fixture(scope="module")
def tokens(platform):
    return {username: platform.token(username) for username in DEMO_USERS}


def service_operations(platform, service: str) -> list[tuple[str, str]]:
    document = requests.get(f"{platform.service_urls[service]}/openapi.json", timeout=30).json()
    return [(path, method.upper()) for path, entries in document["paths"].items()
            for method in entries if method in ("get", "post", "put", "patch", "delete")]


def call(base: str, token: str, method: str, path: str, owned, **params) -> requests.Response:
    template = ID.sub("{}", path)
    names = ID.findall(path)
    values = {"{participant_id}": owned["participant_id"], "{need_id}": owned["need_id"],
              "{consent_id}": owned["consent_id"], "{offer_id}": owned["offer_id"],
              "{referral_id}": owned["referral_id"],
              "{appointment_id}": owned["appointment_id"],
              "{entry_id}": owned["notification_id"] or str(uuid.uuid4()),
              "{notification_id}": owned["notification_id"] or str(uuid.uuid4())}
    url = base + template.format(*[values.get(name, str(uuid.uuid4())) for name in names])
    kwargs: dict = {"headers": {"Authorization": f"Bearer {token}", "If-Match": '"stale"'},
                    "timeout": 30, "params": params}
    if template == "/api/v1/participants/import":
        kwargs["files"] = {"file": ("x.csv", b"given_name;family_name\n", "text/csv")}
    elif (template, method) in BODIES and BODIES[(template, method)]:
        body = BODIES[(template, method)](owned)
        if body is not None:
            kwargs["json"] = body
    return requests.request(method, url, **kwargs)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_of_a_service_refuses_a_role_at_its_own_port_as_the_gateway_does(
        platform, records, tokens, service):  # noqa: F811 - records is the matrix's fixture
    operations = service_operations(platform, service)
    assert operations, f"{service} documents no operation"
    failures = []
    for path, method in operations:
        needed = policy.roles_for(ID.sub("<x>", path), method)
        if needed is None:
            failures.append(f"{method} {path} of {service} has no policy entry")
            continue
        for username, (_org, _type, _alliance, roles) in DEMO_USERS.items():
            if set(roles) & needed:
                continue  # allowed: the matrix at the gateway checks what they see
            direct = call(platform.service_urls[service], tokens[username], method, path,
                          records)
            through = call(platform.gateway_url, tokens[username], method, path, records)
            if direct.status_code != 403 or through.status_code != 403:
                failures.append(f"{username}: {method} {path}: service {direct.status_code}, "
                                f"gateway {through.status_code}, expected 403 at both")
            elif direct.json()["message"] != through.json()["message"]:
                failures.append(f"{username}: {method} {path}: the service says "
                                f"{direct.json()['message']!r}, the gateway "
                                f"{through.json()['message']!r}")
            leaked = [s for s in records["secrets"] if s in direct.text]
            if leaked:
                failures.append(f"{username}: {method} {path} at {service} shows {leaked}")
    assert not failures, "\n".join(failures)


def test_an_auditor_at_intakes_port_neither_lists_names_nor_erases(platform, tokens):
    owner = platform.as_user("cw.jmd-leverkusen")
    body = person(given_name="Direkt-Angriff", family_name="Portzugriff")
    participant = owner.post("/api/v1/participants", json=body).json()
    intake = platform.service_urls["intake"]
    for attacker in ("audit.jmd-leverkusen", "coord.leverkusen", "core.caritas-leverkusen",
                     "ministry.analyst"):
        headers = {"Authorization": f"Bearer {tokens[attacker]}"}
        listed = requests.get(f"{intake}/api/v1/participants", headers=headers,
                              params={"q": "Direkt-Angriff"}, timeout=30)
        assert listed.status_code == 403, (attacker, listed.text)
        assert "Direkt-Angriff" not in listed.text
        erased = requests.delete(f"{intake}/api/v1/participants/{participant['id']}",
                                 headers=headers, timeout=30)
        assert erased.status_code == 403, (attacker, erased.text)
    still = owner.get(f"/api/v1/participants/{participant['id']}")
    assert still.status_code == 200 and still.json()["given_name"] == "Direkt-Angriff"


def test_reminders_at_the_notifications_port_are_for_case_workers_only(platform, records,  # noqa: F811
                                                                       tokens):
    url = f"{platform.service_urls['notifications']}/api/v1/reminders"
    for attacker in ("audit.jmd-leverkusen", "coord.leverkusen", "ministry.analyst"):
        answer = requests.get(url, params={"appointment_id": records["appointment_id"]},
                              headers={"Authorization": f"Bearer {tokens[attacker]}"},
                              timeout=30)
        assert answer.status_code == 403, (attacker, answer.text)
    owner = requests.get(url, params={"appointment_id": records["appointment_id"]},
                         headers={"Authorization": f"Bearer {tokens['cw.jmd-leverkusen']}"},
                         timeout=30)
    assert owner.status_code == 200, owner.text


def test_a_coordinator_of_the_owning_organisation_cannot_work_on_its_referrals(platform,
                                                                              records,  # noqa: F811
                                                                              forge):
    """The referrals service once let coordinators work on referrals while the gateway did not:
    a coordinator of the sender (a forged but validly signed token) is refused at both."""
    token = forge.sign(forge.like("cw.jmd-leverkusen",
                                  realm_access={"roles": ["coordinator"]}))
    headers = {"Authorization": f"Bearer {token}"}
    for base in (platform.service_urls["referrals"], platform.gateway_url):
        read = requests.get(f"{base}/api/v1/referrals/{records['referral_id']}",
                            headers=headers, timeout=30)
        assert read.status_code == 403, read.text
        assert "Sehr vertraulicher Hinweis" not in read.text
        cancelled = requests.post(f"{base}/api/v1/referrals/{records['referral_id']}/status",
                                  json={"status": "cancelled", "reason": "Angriff"},
                                  headers=headers, timeout=30)
        assert cancelled.status_code == 403, cancelled.text
    # The catalogue stays theirs to curate.
    offer = requests.post(f"{platform.service_urls['referrals']}/api/v1/offers", headers=headers,
                          json={"title": "Koordiniert", "category": "counselling"}, timeout=30)
    assert offer.status_code == 201, offer.text


def test_an_organisations_inbox_of_case_work_is_for_its_case_workers_only(platform,
                                                                        records,  # noqa: F811
                                                                        forge):
    """Entries addressed to an organisation point to referrals only its case workers may open;
    the notifications service once showed them to coordinators as well."""
    assert records["notification_id"], "the matrix's inbox entry did not arrive"
    token = forge.sign(forge.like("cw.caritas-leverkusen", sub=str(uuid.uuid4()),
                                  realm_access={"roles": ["coordinator"]}))
    for base in (platform.service_urls["notifications"], platform.gateway_url):
        inbox = requests.get(f"{base}/api/v1/notifications", timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
        assert inbox.status_code == 200, inbox.text
        assert records["notification_id"] not in inbox.text
        assert records["referral_id"] not in inbox.text
    case_worker = platform.as_user("cw.caritas-leverkusen").get("/api/v1/notifications",
                                                                params={"page_size": 100})
    assert records["notification_id"] in case_worker.text


# -- a route without a policy entry is refused by default -----------------------------------

class _Verifier:
    def principal(self, token: str, *, require_organization: bool = True) -> Principal:
        return Principal(subject="s", username="u", client_id="buendnis-cli",
                         roles=frozenset({"case_worker", "coordinator", "core_group",
                                          "ministry", "auditor"}),
                         org_alias="jmd-leverkusen", alliance="leverkusen")


def test_a_new_route_without_a_policy_entry_is_refused_before_its_view_runs():
    app, _api = create_flask_app(__name__, title="t", verifier=_Verifier())
    ran: list[str] = []

    @app.get("/api/v1/forgotten")
    def forgotten():
        ran.append("forgotten")
        return {"secret": "x"}

    @app.put("/api/v1/participants/<pid>")
    def forgotten_too(pid):
        ran.append(pid)
        return {"secret": "x"}

    @app.get("/internal/participants/<pid>/forgotten")
    def forgotten_internal(pid):
        ran.append(pid)
        return {"secret": "x"}

    client = app.test_client()
    headers = {"Authorization": "Bearer anything"}
    assert client.get("/api/v1/forgotten", headers=headers).status_code == 404
    assert client.put("/api/v1/participants/1", headers=headers).status_code == 405
    assert client.get("/internal/participants/1/forgotten", headers=headers).status_code == 403
    assert ran == []


def test_each_route_is_in_the_policy_once():
    """Two entries for one route would be two answers; the first would silently win."""
    for table in (policy.POLICY, policy.INTERNAL_POLICY):
        paths = [path for path, _methods in table]
        assert len(paths) == len(set(paths)), sorted(p for p in paths if paths.count(p) > 1)


# -- internal routes: the one service each is for, the owner from the records -----------------

INTERNAL = {
    ("intake", "/internal/participants/{}/sharing"): "referrals",
    ("intake", "/internal/participants/{}/profile"): "referrals",
    ("intake", "/internal/participants/{}/contact"): "notifications",
    ("referrals", "/internal/participants/{}/export"): "intake",
    ("notifications", "/internal/participants/{}/export"): "intake",
    ("intake", "/internal/consents/current?participant_id={}"): "notifications",
}


def test_internal_routes_take_only_the_service_account_they_are_for(platform, records,  # noqa: F811
                                                                    tokens):
    service_tokens = {name: platform.service_token(name) for name in SERVICES}
    for (service, path), caller in INTERNAL.items():
        url = platform.service_urls[service] + path.format(records["participant_id"])
        params = {"recipient_org": "caritas-leverkusen"}
        for name, token in service_tokens.items():
            answer = requests.get(url, params=params, timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})
            if name == caller:
                assert answer.status_code == 200, (service, path, name, answer.text)
            else:
                assert answer.status_code == 403, (service, path, name, answer.text)
                assert answer.json()["message"] == (
                    f"This endpoint is for the {caller} service only.")
                assert not [s for s in records["secrets"] if s in answer.text]
        for username in ("cw.jmd-leverkusen", "audit.jmd-leverkusen"):
            answer = requests.get(url, params=params, timeout=30,
                                  headers={"Authorization": f"Bearer {tokens[username]}"})
            assert answer.status_code == 403, (service, path, username, answer.text)


def test_a_claimed_owner_neither_widens_nor_narrows_an_internal_answer(platform, records):  # noqa: F811
    """``owner_org`` was once the caller's query parameter: the export answered for, and the
    audit trail recorded an access by, whichever organisation the caller named."""
    as_intake = {"Authorization": f"Bearer {platform.service_token('intake')}"}
    for service in ("referrals", "notifications"):
        url = (f"{platform.service_urls[service]}/internal/participants/"
               f"{records['participant_id']}/export")
        honest = requests.get(url, headers=as_intake, timeout=30)
        claimed = requests.get(url, headers=as_intake, timeout=30,
                               params={"owner_org": "caritas-leverkusen"})
        assert honest.status_code == claimed.status_code == 200
        assert claimed.json() == honest.json()
    referrals_export = requests.get(
        f"{platform.service_urls['referrals']}/internal/participants/"
        f"{records['participant_id']}/export", headers=as_intake, timeout=30).json()
    assert [r["id"] for r in referrals_export["referrals"]] == [records["referral_id"]]
    contact = requests.get(
        f"{platform.service_urls['intake']}/internal/participants/{records['participant_id']}"
        "/contact", params={"owner_org": "caritas-leverkusen"}, timeout=30,
        headers={"Authorization": f"Bearer {platform.service_token('notifications')}"})
    assert contact.json()["owner_org"] == "jmd-leverkusen"


def test_a_case_worker_cannot_refer_another_organisations_participant(platform, records):  # noqa: F811
    """Intake answers for the participant's owner from its own record; referrals refuses anyone
    else's participant as not found."""
    awo = platform.as_user("cw.awo-leverkusen")
    answer = awo.post("/api/v1/referrals", json={
        "participant_id": records["participant_id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course"})
    assert answer.status_code == 404, answer.text
    assert not [s for s in records["secrets"] if s in answer.text]


# -- finding 9: offers matched to a person, and the receiver's auditor -----------------------

def test_offers_matched_to_a_participant_only_for_the_owners_case_workers(platform, records,  # noqa: F811
                                                                         forge):
    """The match reads the person's profile (residence status, age, languages, needs). A
    coordinator or core-group member of the *owning* organisation reads the catalogue but not
    the person: 403 for the role, as the policy answers any refused role. A case worker of
    another organisation: 404, as for any record of another organisation (the id is not theirs
    to know exists)."""
    query = {"participant_id": records["participant_id"]}
    for role in ("coordinator", "core_group"):
        token = forge.sign(forge.like("cw.jmd-leverkusen", realm_access={"roles": [role]}))
        headers = {"Authorization": f"Bearer {token}"}
        for base in (platform.gateway_url, platform.service_urls["referrals"]):
            matched = requests.get(f"{base}/api/v1/offers", params=query, headers=headers,
                                   timeout=30)
            assert matched.status_code == 403, (role, base, matched.text)
            assert "fit" not in matched.text
            catalogue = requests.get(f"{base}/api/v1/offers", headers=headers, timeout=30)
            assert catalogue.status_code == 200, catalogue.text
    other = platform.as_user("cw.awo-leverkusen").get("/api/v1/offers", params=query)
    assert other.status_code == 404
    owner = platform.as_user("cw.jmd-leverkusen").get("/api/v1/offers", params=query)
    assert owner.status_code == 200, owner.text


def test_matching_to_a_person_needs_case_work_however_the_query_is_written():
    def person(*roles: str) -> Principal:
        return Principal(subject="s", username="u", client_id="buendnis-cli",
                         roles=frozenset(roles), org_alias="jmd-leverkusen",
                         alliance="leverkusen")

    pid = str(uuid.uuid4())
    for args in (MultiDict({"participant_id": pid}),
                 MultiDict([("participant_id", ""), ("participant_id", pid)]),
                 MultiDict([("category", "housing"), ("participant_id", f" {pid}")])):
        for role in ("coordinator", "core_group"):
            assert policy.decide(person(role), "/api/v1/offers", "GET", args).status == 403
            assert policy.decide(person(role), "/api/v1/offers/", "HEAD", args).status == 403
        assert policy.decide(person("case_worker"), "/api/v1/offers", "GET", args).allowed
    assert policy.decide(person("coordinator"), "/api/v1/offers", "GET",
                         MultiDict({"category": "housing"})).allowed


def trail(platform, token: str, **params) -> list[dict]:
    answer = requests.get(f"{platform.gateway_url}/api/v1/audit", params=params, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_receivers_auditor_never_sees_the_senders_participant_id(platform, forge):
    sender = platform.as_user("cw.jmd-leverkusen")
    receiver = platform.as_user("cw.caritas-leverkusen")
    participant = sender.post("/api/v1/participants", json=person()).json()
    assert sender.post(f"/api/v1/participants/{participant['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["languages"],
        "valid_until": (date.today() + timedelta(days=30)).isoformat()}).status_code == 201
    referral = sender.post("/api/v1/referrals", json={
        "participant_id": participant["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course"}).json()
    base = f"/api/v1/referrals/{referral['id']}"
    # Everything the receiver does with the referral is audited, as the receiver's action.
    assert receiver.get(base).status_code == 200
    assert receiver.get("/api/v1/referrals", params={"box": "received"}).status_code == 200
    assert receiver.get(f"{base}/history").status_code == 200
    assert receiver.post(f"{base}/messages", json={"text": "Hallo"}).status_code == 201
    assert receiver.get(f"{base}/messages").status_code == 200
    assert receiver.post(f"{base}/status", json={"status": "accepted"}).status_code == 200
    appointment = receiver.post(f"{base}/appointments", json={
        "start": "2031-06-02T10:00:00+02:00", "end": "2031-06-02T11:00:00+02:00",
        "mode": "phone"}).json()
    assert receiver.get(f"/api/v1/appointments/{appointment['id']}").status_code == 200
    assert receiver.get("/api/v1/appointments").status_code == 200
    # The reminders exist once notifications has handled the booking's event.
    wait_for(lambda: receiver.get("/api/v1/reminders", params={
        "appointment_id": appointment["id"]}).status_code == 200, timeout=30,
        what="the appointment's reminders readable by the receiver")

    auditor = forge.sign(forge.like("audit.jmd-leverkusen", organization=forge.claims_of(
        "cw.caritas-leverkusen")["organization"], preferred_username="audit.caritas-leverkusen"))
    wanted = {"referral.read", "referral.list", "referral.history.read", "referral.message.post",
              "referral.message.list", "referral.status", "appointment.create",
              "appointment.read", "appointment.list", "reminder.list", "participant.share"}
    entries: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entries = trail(platform, auditor, page_size=500)
        if wanted <= {e["action"] for e in entries}:
            break
        time.sleep(0.5)
    assert wanted <= {e["action"] for e in entries}, sorted({e["action"] for e in entries})
    mine = [e for e in entries if e["actor_org"] == "caritas-leverkusen"]
    assert mine
    assert participant["id"] not in str(entries)
    assert all(e["participant_id"] is None for e in mine if e["action"] in wanted)
    assert trail(platform, auditor, participant_id=participant["id"]) == []
    # The sender's own auditor still finds the sender's actions by the participant's id.
    own = trail(platform, platform.token("audit.jmd-leverkusen"), participant_id=participant["id"])
    assert {"participant.create", "referral.create"} <= {e["action"] for e in own}
