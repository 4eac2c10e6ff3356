"""A referral as a FHIR R4 Bundle: its sender and receiver read it, validated by the
``fhir.resources`` models of FHIR R4 (4.0.1); the Task's status follows the referral through
the closed-loop states; only the pseudonym identifies the person."""
from __future__ import annotations

import json

import pytest
from fhir.resources import __fhir_version__
from fhir.resources.bundle import Bundle

from referrals.referral.fhir import STATUS_MAPPING
from tests.referrals.conftest import grant, refer, register, set_status
from tests.referrals.test_appointments import book
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process
from tests.support.platform import wait_for


def fhir_of(client, referral_id: str):
    return client.get(f"/api/v1/referrals/{referral_id}/fhir")


def resources(body: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in body["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


# The R4 value sets of the status codes (fhir.resources checks a code's form, not its value
# set), the Task's narrowed as the closed-loop guide narrows it.
VALUE_SETS = {
    "Task": {"draft", "requested", "accepted", "rejected", "cancelled", "in-progress",
             "on-hold", "failed", "completed", "entered-in-error"},
    "ServiceRequest": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                       "unknown"},
    "Consent": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
    "Appointment": {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled",
                    "noshow", "entered-in-error", "checked-in", "waitlist"},
}


def validated(response) -> dict:
    """The body, checked as FHIR R4 by fhir.resources (every resource's structure, required
    fields, data types), its status codes against their value sets, and every reference
    resolved inside the Bundle."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.parse_obj(body)  # raises on anything that is not FHIR R4
    urls = {entry["fullUrl"] for entry in body["entry"]}
    for entry in body["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in VALUE_SETS:
            assert resource["status"] in VALUE_SETS[resource["resourceType"]], resource
        for reference in _references(resource):
            assert reference in urls, reference
    return body


def _references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_the_models_are_fhir_r4():
    assert __fhir_version__ == "4.0.1"


def test_sender_and_receiver_read_the_bundle_and_no_one_else(consented_referral, jmd, caritas,
                                                             awo, meerbusch, users):
    participant, referral = consented_referral
    booked = book(caritas, referral["id"])
    assert booked.status_code == 201, booked.text
    for reader in (jmd, caritas):
        body = validated(fhir_of(reader, referral["id"]))
        assert body["resourceType"] == "Bundle" and body["type"] == "collection"
        found = resources(body)
        assert {kind: len(items) for kind, items in found.items()} == {
            "Task": 1, "ServiceRequest": 1, "Patient": 1, "Consent": 1, "Appointment": 1}
        task = found["Task"][0]
        assert task["status"] == "requested" and task["intent"] == "order"
        urls = {entry["resource"]["resourceType"]: entry["fullUrl"] for entry in body["entry"]}
        assert task["focus"]["reference"] == urls["ServiceRequest"]
        assert task["for"]["reference"] == urls["Patient"]
        assert task["requester"]["identifier"]["value"] == "jmd-leverkusen"
        assert task["owner"]["identifier"]["value"] == "caritas-leverkusen"
        request = found["ServiceRequest"][0]
        assert request["status"] == "active"
        assert request["code"]["coding"][0]["code"] == "language_course"
        assert found["Patient"][0]["identifier"] == [
            {"system": "urn:buendnis:pseudonym", "value": participant["pseudonym"]}]
        consent = found["Consent"][0]
        assert consent["status"] == "active"
        assert consent["patient"]["reference"] == urls["Patient"]
        assert sorted(c["coding"][0]["code"] for c in consent["provision"]["code"]) == [
            "identity", "languages"]
        appointment = found["Appointment"][0]
        assert appointment["status"] == "booked"
        assert appointment["participant"][0]["actor"]["reference"] == urls["Patient"]
    for outsider in (awo, meerbusch):
        assert fhir_of(outsider, referral["id"]).status_code == 404
    for role in ("coord.leverkusen", "core.caritas-leverkusen", "audit.jmd-leverkusen"):
        assert fhir_of(users[role], referral["id"]).status_code == 403, role


def test_no_name_birth_date_or_contact_in_the_bundle(consented_referral, jmd, caritas):
    participant, referral = consented_referral
    book(caritas, referral["id"], location="bei Samira Nouri zu Hause", note="Samira anrufen")
    set_status(caritas, referral["id"], "rejected", reason="Samira Nouri passt nicht")
    for reader in (jmd, caritas):
        text = json.dumps(validated(fhir_of(reader, referral["id"])))
        for personal in ("Samira", "Nouri", "2003-04-05", "+4917", "samira@", "Herat",
                         "Sprachkurs ab März", "cw.jmd-leverkusen", "cw.caritas-leverkusen",
                         participant["id"]):
            assert personal not in text, personal
        patient = resources(json.loads(text))["Patient"][0]
        assert set(patient) == {"resourceType", "id", "identifier"}


@pytest.mark.parametrize("path,expected", [
    (["accepted"], ("accepted", "active")),
    (["accepted", "in-progress"], ("in-progress", "active")),
    (["accepted", "in-progress", "on-hold"], ("on-hold", "active")),
    (["accepted", "in-progress", "completed"], ("completed", "completed")),
    (["accepted", "in-progress", "failed"], ("failed", "revoked")),
    (["rejected"], ("rejected", "revoked")),
    (["cancelled"], ("cancelled", "revoked")),
])
def test_the_task_follows_the_referral_through_the_closed_loop(jmd, caritas, path, expected):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["languages"])
    referral = refer(jmd, participant["id"]).json()
    for status in path:
        mover = jmd if status == "cancelled" else caritas
        moved = set_status(mover, referral["id"], status, reason="Grund")
        assert moved.status_code == 200, moved.text
    found = resources(validated(fhir_of(jmd, referral["id"])))
    assert (found["Task"][0]["status"], found["ServiceRequest"][0]["status"]) == expected
    assert STATUS_MAPPING[path[-1]] == expected
    if expected[0] in ("completed", "failed", "rejected", "cancelled"):
        assert found["Task"][0]["executionPeriod"]["end"]


def test_a_withdrawn_consent_shows_as_inactive(jmd, caritas):
    participant = register(jmd)
    consent = grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    referral = refer(jmd, participant["id"]).json()
    withdrawn = jmd.delete(f"/api/v1/participants/{participant['id']}/consents/{consent['id']}")
    assert withdrawn.status_code == 204

    def inactive():
        found = resources(validated(fhir_of(caritas, referral["id"])))
        return found if found["Consent"][0]["status"] == "inactive" else None

    found = wait_for(inactive, timeout=30, what="the consent shown as inactive")
    assert "code" not in found["Consent"][0]["provision"]  # nothing shared any more
    assert found["Patient"][0]["identifier"][0]["value"] == participant["pseudonym"]


def test_every_referral_status_has_a_task_status_of_the_guide():
    from referrals.referral.models import STATUSES

    # The guide's value set: FHIR R4 TaskStatus without "ready" and "received".
    guide = {"draft", "requested", "accepted", "rejected", "cancelled", "in-progress",
             "on-hold", "failed", "completed", "entered-in-error"}
    assert set(STATUS_MAPPING) == set(STATUSES)
    assert {task for task, _request in STATUS_MAPPING.values()} <= guide
    assert {request for _task, request in STATUS_MAPPING.values()} <= {
        "active", "completed", "revoked"}
