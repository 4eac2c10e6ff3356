"""A case worker refers a participant to a partner of the alliance, with the participant's
consent; the receiver sees what was consented and nothing else; nobody else sees anything."""
from __future__ import annotations

import pytest

from tests.referrals.conftest import events_of, grant, query, refer, register, same_id
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process


def test_a_referral_without_consent_is_refused_and_nothing_is_stored(platform, jmd):
    participant = register(jmd)
    grant(jmd, participant["id"], "awo-leverkusen", ["identity"])  # for someone else

    response = refer(jmd, participant["id"], "caritas-leverkusen")

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["status"] == "Conflict"
    assert "consent" in body["errors"]
    stored = query(platform, "referrals", "SELECT participant_id FROM referrals")
    assert not any(same_id(row[0], participant["id"]) for row in stored)


def test_the_sender_gets_the_referral_as_requested_with_its_own_full_reference(
    consented_referral, jmd
):
    participant, referral = consented_referral
    assert referral["status"] == "requested"
    assert referral["from_org"] == "jmd-leverkusen"
    assert referral["to_org"] == "caritas-leverkusen"
    assert referral["participant_id"] == participant["id"]
    assert referral["note"] == "Bitte Sprachkurs ab März"
    assert referral["viewer_role"] == "sender"
    assert referral["allowed_statuses"] == ["cancelled"]

    again = jmd.get(f"/api/v1/referrals/{referral['id']}")
    assert again.status_code == 200
    assert again.json()["participant_id"] == participant["id"]


def test_receiver_sees_only_consented_categories(consented_referral, caritas):
    participant, referral = consented_referral

    response = caritas.get(f"/api/v1/referrals/{referral['id']}")

    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["viewer_role"] == "receiver"
    assert seen["participant"] == {
        "pseudonym": participant["pseudonym"],
        "identity": {"given_name": "Samira", "family_name": "Nouri",
                     "birth_date": "2003-04-05", "gender": "female", "nationality": "AF"},
        "languages": ["fa", "de"],
    }
    assert sorted(seen["shared_categories"]) == ["identity", "languages"]
    # The sender's own reference stays with the sender.
    for private in ("participant_id", "note", "consent_id"):
        assert private not in seen
    text = response.text
    for secret in ("+49170", "samira@example.org", "Herat", "B1 angestrebt", "Leverkusen\""):
        assert secret not in text
    assert seen["allowed_statuses"] == ["accepted", "rejected", "cancelled"]


@pytest.mark.parametrize("outsider", ["cw.awo-leverkusen", "cw.stadt-meerbusch"])
def test_a_third_organisation_gets_404_for_everything_about_the_referral(
    consented_referral, jmd, users, outsider
):
    _participant, referral = consented_referral
    base = f"/api/v1/referrals/{referral['id']}"
    booked = jmd.post(f"{base}/appointments", json={
        "start": "2031-03-03T10:00:00+01:00", "end": "2031-03-03T11:00:00+01:00",
        "mode": "in_person"})
    assert booked.status_code == 201, booked.text
    assert jmd.post(f"{base}/messages", json={"text": "Termin passt?"}).status_code == 201
    other = users[outsider]

    for path in (base, f"{base}/history", f"{base}/messages", f"{base}/appointments",
                 f"/api/v1/appointments/{booked.json()['id']}"):
        response = other.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["status"] == "Not Found"
    assert other.post(f"{base}/messages", json={"text": "?"}).status_code == 404
    assert other.post(f"{base}/status", json={"status": "accepted"}).status_code == 404
    assert other.post(f"{base}/appointments", json={
        "start": "2031-03-04T10:00:00+01:00", "end": "2031-03-04T11:00:00+01:00",
        "mode": "phone"}).status_code == 404
    listed = other.get("/api/v1/referrals").json()
    assert referral["id"] not in [item["id"] for item in listed]


def test_roles_that_do_not_work_cases_are_refused(consented_referral, users):
    _participant, referral = consented_referral
    core_group = users["core.caritas-leverkusen"]
    response = core_group.get(f"/api/v1/referrals/{referral['id']}")
    assert response.status_code == 403
    assert users["ministry.analyst"].get("/api/v1/referrals").status_code == 403


@pytest.mark.parametrize(("to_org", "why"), [
    ("no-such-org", "unknown"),
    ("jmd-neuss", "another alliance"),
    ("jmd-leverkusen", "own organisation"),
])
def test_the_receiver_must_be_another_organisation_of_the_alliance(jmd, to_org, why):
    participant = register(jmd)
    response = refer(jmd, participant["id"], to_org)
    assert response.status_code == 422, (why, response.text)
    assert "to_org" in response.json()["errors"]


def test_another_organisations_participant_cannot_be_referred(jmd, awo):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    response = refer(awo, participant["id"], "caritas-leverkusen")
    assert response.status_code == 404
    assert "participant_id" in response.json()["errors"]


def test_the_body_is_validated_field_by_field(jmd):
    response = jmd.post("/api/v1/referrals", json={"to_org": "caritas-leverkusen",
                                                   "need_category": "astrology"})
    assert response.status_code == 422
    assert set(response.json()["errors"]) >= {"participant_id", "need_category"}


def test_sent_and_received_boxes_with_status_filter_and_paging(jmd, caritas):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["languages"])
    created = [refer(jmd, participant["id"], need_category=need).json()["id"]
               for need in ("language_course", "internship", "counselling")]
    assert caritas.post(f"/api/v1/referrals/{created[0]}/status",
                        json={"status": "accepted"}).status_code == 200

    sent = jmd.get("/api/v1/referrals", params={"box": "sent", "page_size": 100}).json()
    assert set(created) <= {item["id"] for item in sent}
    received = caritas.get("/api/v1/referrals", params={"box": "received", "page_size": 100})
    assert set(created) <= {item["id"] for item in received.json()}
    assert all(item["to_org"] == "caritas-leverkusen" for item in received.json())
    jmd_received = jmd.get("/api/v1/referrals", params={"box": "received"}).json()
    assert all(item["to_org"] == "jmd-leverkusen" for item in jmd_received)

    accepted = caritas.get("/api/v1/referrals", params={"box": "received",
                                                        "status": "accepted",
                                                        "page_size": 100}).json()
    assert created[0] in [item["id"] for item in accepted]
    assert not {created[1], created[2]} & {item["id"] for item in accepted}

    first_page = jmd.get("/api/v1/referrals", params={"box": "sent", "page_size": 2})
    assert len(first_page.json()) == 2
    assert '"total"' in first_page.headers["X-Pagination"]


def test_sender_and_receiver_write_in_one_thread(consented_referral, jmd, caritas, platform):
    _participant, referral = consented_referral
    base = f"/api/v1/referrals/{referral['id']}/messages"
    first = jmd.post(base, json={"text": "Können Sie nächste Woche?"})
    assert first.status_code == 201, first.text
    second = caritas.post(base, json={"text": "Ja, Dienstag 10 Uhr."})
    assert second.status_code == 201

    for client in (jmd, caritas):
        thread = client.get(base).json()
        assert [(m["author_org"], m["text"]) for m in thread] == [
            ("jmd-leverkusen", "Können Sie nächste Woche?"),
            ("caritas-leverkusen", "Ja, Dienstag 10 Uhr."),
        ]
    assert jmd.post(base, json={"text": ""}).status_code == 422
    # The event says who wrote, not what.
    posted = events_of(platform, "referral.message_posted", referral_id=referral["id"])
    assert [event["author_org"] for event in posted] == ["jmd-leverkusen", "caritas-leverkusen"]
    assert all("text" not in event for event in posted)


def test_reads_and_writes_are_audited(consented_referral, caritas, platform):
    participant, referral = consented_referral
    caritas.get(f"/api/v1/referrals/{referral['id']}")
    rows = query(platform, "referrals",
                 "SELECT actor, actor_org, action, participant_id FROM audit_log "
                 "WHERE action IN ('referral.create', 'referral.read')")
    mine = [(actor, org, action) for actor, org, action, pid in rows
            if same_id(pid, participant["id"])]
    assert ("cw.jmd-leverkusen", "jmd-leverkusen", "referral.create") in mine
    assert ("cw.caritas-leverkusen", "caritas-leverkusen", "referral.read") in mine


def test_the_requested_event_carries_ids_and_codes_only(consented_referral, platform):
    participant, referral = consented_referral
    (event,) = events_of(platform, "referral.requested", referral_id=referral["id"])
    assert event["participant_id"] == participant["id"]
    assert event["from_org"] == "jmd-leverkusen"
    assert event["to_org"] == "caritas-leverkusen"
    assert event["need_category"] == "language_course"
    assert "Samira" not in str(event)


def test_one_open_referral_per_participant_receiver_and_need(consented_referral, jmd, caritas):
    participant, referral = consented_referral
    again = refer(jmd, participant["id"])
    assert again.status_code == 409
    assert referral["id"] in again.json()["message"]
    # Another need is another referral.
    assert refer(jmd, participant["id"], need_category="internship").status_code == 201
    # Once the first one is closed, the participant can be referred for that need again.
    caritas.post(f"/api/v1/referrals/{referral['id']}/status",
                 json={"status": "rejected", "reason": "Kurs ist voll"})
    assert refer(jmd, participant["id"]).status_code == 201


def test_a_referral_can_name_an_offer_of_the_receiver(jmd, caritas, awo):
    offer = caritas.post("/api/v1/offers", json={"title": "Deutschkurs A2",
                                                 "category": "language_course"}).json()
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["languages"])
    grant(jmd, participant["id"], "awo-leverkusen", ["languages"])

    to_awo = refer(jmd, participant["id"], "awo-leverkusen", offer_id=offer["id"])
    assert to_awo.status_code == 422
    assert "offer_id" in to_awo.json()["errors"]
    wrong_need = refer(jmd, participant["id"], offer_id=offer["id"], need_category="housing")
    assert wrong_need.status_code == 422
    response = refer(jmd, participant["id"], offer_id=offer["id"])
    assert response.status_code == 201, response.text
    assert caritas.get(f"/api/v1/referrals/{response.json()['id']}").json()["offer_id"] == (
        offer["id"])
