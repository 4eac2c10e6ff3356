"""Consent per recipient, and what another service may learn under it."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from tests.intake.conftest import person, sql

pytestmark = pytest.mark.platform


def sharing(platform, participant_id: str, recipient: str, **params):
    return requests.get(
        f"{platform.service_urls['intake']}/internal/participants/{participant_id}/sharing",
        params={"recipient_org": recipient, **params},
        headers={"Authorization": f"Bearer {platform.service_token('referrals')}"},
        timeout=10,
    )


def grant(jmd, participant_id, recipient="caritas-leverkusen", categories=("contact", "needs"),
          days=90):
    return jmd.post(f"/api/v1/participants/{participant_id}/consents", json={
        "recipient_org": recipient, "data_categories": list(categories), "purpose": "referral",
        "valid_until": (date.today() + timedelta(days=days)).isoformat()})


def test_a_consent_is_recorded_with_who_and_when(jmd, registered):
    response = grant(jmd, registered["id"])
    assert response.status_code == 201, response.text
    consent = response.json()
    assert consent["recipient_org"] == "caritas-leverkusen"
    assert consent["data_categories"] == ["contact", "needs"]
    assert consent["recorded_by"] == "cw.jmd-leverkusen"
    assert consent["recorded_by_org"] == "jmd-leverkusen"
    assert consent["valid"] is True
    listed = jmd.get(f"/api/v1/participants/{registered['id']}/consents").json()
    assert [c["id"] for c in listed] == [consent["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipient_org": "stadt-meerbusch"}, "recipient_org"),  # another alliance
        ({"recipient_org": "no-such-org"}, "recipient_org"),
        ({"recipient_org": "jmd-leverkusen"}, "recipient_org"),  # oneself
        ({"data_categories": []}, "data_categories"),
        ({"data_categories": ["health_records"]}, "data_categories"),
        ({"purpose": "marketing"}, "purpose"),
        ({"valid_until": "2001-01-01"}, "valid_until"),
    ],
)
def test_invalid_consents_are_refused(jmd, registered, body, field):
    payload = {"recipient_org": "caritas-leverkusen", "data_categories": ["contact"],
               "valid_until": (date.today() + timedelta(days=30)).isoformat(), **body}
    response = jmd.post(f"/api/v1/participants/{registered['id']}/consents", json=payload)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


def test_the_snapshot_holds_exactly_the_consented_categories(platform, jmd, registered):
    grant(jmd, registered["id"], categories=("contact", "needs"))
    answer = sharing(platform, registered["id"], "caritas-leverkusen")
    assert answer.status_code == 200
    body = answer.json()
    assert body["pseudonym"] == registered["pseudonym"]
    assert body["consent"]["data_categories"] == ["contact", "needs"]
    assert set(body["snapshot"]) == {"contact", "needs"}
    assert body["snapshot"]["contact"]["phone"] == "+4917612345678"
    assert registered["given_name"] not in answer.text  # identity was not consented
    assert registered["birth_date"] not in answer.text


def test_no_consent_for_another_recipient(platform, jmd, registered):
    grant(jmd, registered["id"], recipient="caritas-leverkusen")
    body = sharing(platform, registered["id"], "awo-leverkusen").json()
    assert body["consent"] is None and body["snapshot"] == {}


def test_a_withdrawn_consent_is_not_valid(platform, jmd, registered):
    consent = grant(jmd, registered["id"]).json()
    path = f"/api/v1/participants/{registered['id']}/consents/{consent['id']}"
    assert jmd.delete(path).status_code == 204
    assert jmd.get(path).json()["valid"] is False
    assert jmd.get(path).json()["withdrawn_by"] == "cw.jmd-leverkusen"
    assert sharing(platform, registered["id"], "caritas-leverkusen").json()["consent"] is None
    assert jmd.delete(path).status_code == 204  # withdrawing again changes nothing
    withdrawn = sql(platform, "intake", "SELECT count(*) FROM outbox WHERE type = "
                    "'consent.withdrawn'")
    assert withdrawn[0][0] >= 1


def test_an_expired_consent_is_not_valid(platform, jmd, registered):
    consent = grant(jmd, registered["id"]).json()
    yesterday = date.today() - timedelta(days=1)
    sql(platform, "intake", "UPDATE consents SET valid_until = :d WHERE recipient_org = "
        "'caritas-leverkusen' AND participant_id IN (SELECT id FROM participants WHERE "
        "pseudonym = :p)", d=yesterday, p=registered["pseudonym"])
    assert jmd.get(f"/api/v1/participants/{registered['id']}/consents/{consent['id']}"
                   ).json()["valid"] is False
    assert sharing(platform, registered["id"], "caritas-leverkusen").json()["consent"] is None


def test_internal_endpoints_are_for_services_only(platform, registered):
    url = (f"{platform.service_urls['intake']}/internal/participants/{registered['id']}/sharing"
           "?recipient_org=caritas-leverkusen")
    as_person = requests.get(
        url, headers={"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"},
        timeout=10)
    assert as_person.status_code == 403
    assert requests.get(url, timeout=10).status_code == 401
    through_gateway = requests.get(
        f"{platform.gateway_url}/internal/participants/{registered['id']}/sharing",
        headers={"Authorization": f"Bearer {platform.service_token('referrals')}"}, timeout=10)
    assert through_gateway.status_code in (401, 403, 404)
    assert "pseudonym" not in through_gateway.text


def test_sharing_names_the_owner_from_intakes_record_whatever_the_caller_claims(platform,
                                                                                registered):
    # The owner is intake's to say (referrals compares it with the signed-in person's
    # organisation); an owner_org in the query changes nothing.
    answer = sharing(platform, registered["id"], "caritas-leverkusen", owner_org="awo-leverkusen")
    assert answer.status_code == 200
    assert answer.json()["owner_org"] == "jmd-leverkusen"


def test_the_duplicate_hint_names_the_organisation_and_nothing_else(jmd, caritas, meerbusch):
    original = person(given_name="Mohammad Ali", family_name="Rahimi")
    first = jmd.post("/api/v1/participants", json=original).json()
    assert first["possible_duplicates"] == []
    # Caritas registers the same person, spelt a little differently.
    again = caritas.post("/api/v1/participants", json=person(
        given_name="mohammad-ali", family_name="RAHIMI ", birth_date=original["birth_date"],
        contact=None, needs=[]))
    assert again.status_code == 201
    assert again.json()["possible_duplicates"] == [
        {"organization": "jmd-leverkusen", "organization_name": "Jugendmigrationsdienst Leverkusen"}
    ]
    for value in (first["id"], first["pseudonym"], "+4917612345678", "Leverkusen\""):
        assert value not in str(again.json())
    # Another alliance is not told; another birth date is another person.
    other_alliance = meerbusch.post("/api/v1/participants", json=person(
        given_name="Mohammad Ali", family_name="Rahimi", birth_date=original["birth_date"]))
    assert other_alliance.json()["possible_duplicates"] == []
    other_birthday = caritas.post("/api/v1/participants", json=person(
        given_name="Mohammad Ali", family_name="Rahimi", birth_date="2001-02-03"))
    assert other_birthday.json()["possible_duplicates"] == []


def test_notifications_fetch_the_contact_at_send_time(platform, jmd, registered):
    url = (f"{platform.service_urls['intake']}/internal/participants/{registered['id']}/contact")
    headers = {"Authorization": f"Bearer {platform.service_token('notifications')}"}
    # Only under a consent for the appointment's organisation that holds now.
    for params in ({}, {"recipient_org": "caritas-leverkusen"}):
        refused = requests.get(url, headers=headers, params=params, timeout=10)
        assert refused.status_code == 200
        assert refused.json()["consent"] is False
        assert "contact" not in refused.json() and "given_name" not in refused.json()
        assert "+4917612345678" not in refused.text
    consent = grant(jmd, registered["id"], categories=["languages"]).json()
    answer = requests.get(url, headers=headers, params={"recipient_org": "caritas-leverkusen"},
                          timeout=10)
    assert answer.status_code == 200
    assert answer.json()["consent"] is True
    assert answer.json()["contact"] == {"phone": "+4917612345678",
                                        "email": registered["contact"]["email"],
                                        "preferred_channel": "sms", "language": "ar"}
    # Whose participant it is comes from intake's record, not from the caller.
    claimed = requests.get(url, params={"owner_org": "caritas-leverkusen"}, headers=headers,
                           timeout=10)
    assert claimed.json()["owner_org"] == "jmd-leverkusen"
    # Withdrawn: no more contact data, at once.
    withdrawn = jmd.delete(f"/api/v1/participants/{registered['id']}/consents/{consent['id']}")
    assert withdrawn.status_code == 204
    after = requests.get(url, headers=headers, params={"recipient_org": "caritas-leverkusen"},
                         timeout=10)
    assert after.json()["consent"] is False and "+4917612345678" not in after.text
