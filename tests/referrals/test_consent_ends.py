"""When the participant withdraws consent or is erased, intake's events reach referrals and the
receiver at once sees no more of the person, with the reason; and when intake cannot be asked,
no referral is made."""
from __future__ import annotations

import pytest
import requests

from buendnis_common.settings import ServiceSettings
from referrals.app import create_app
from tests.referrals.conftest import grant, query, refer, register, same_id
from tests.support.platform import free_port, wait_for
from tests.test_token_verifier import settings_for

pytestmark = pytest.mark.platform


def snapshot_dropped(client, referral_id: str, reason: str):
    seen = client.get(f"/api/v1/referrals/{referral_id}").json()
    return seen if seen.get("snapshot_dropped_reason") == reason else None


def test_withdrawing_consent_drops_the_snapshot_at_once_and_says_why(jmd, caritas, platform):
    participant = register(jmd)
    consent = grant(jmd, participant["id"], "caritas-leverkusen", ["identity", "contact"])
    grant(jmd, participant["id"], "awo-leverkusen", ["languages"])
    to_caritas = refer(jmd, participant["id"], "caritas-leverkusen").json()
    to_awo = refer(jmd, participant["id"], "awo-leverkusen").json()
    assert "identity" in caritas.get(f"/api/v1/referrals/{to_caritas['id']}").json()["participant"]

    withdrawn = jmd.delete(f"/api/v1/participants/{participant['id']}/consents/{consent['id']}")
    assert withdrawn.status_code == 204, withdrawn.text

    seen = wait_for(lambda: snapshot_dropped(caritas, to_caritas["id"], "consent_withdrawn"),
                    timeout=30, what="referrals dropping the snapshot")
    assert seen["participant"] == {"pseudonym": participant["pseudonym"]}
    assert seen["shared_categories"] == []
    assert seen["snapshot_dropped_at"] is not None
    assert "Samira" not in str(seen) and "+4917" not in str(seen)
    sender_view = jmd.get(f"/api/v1/referrals/{to_caritas['id']}").json()
    assert sender_view["snapshot_dropped_reason"] == "consent_withdrawn"
    stored = [snapshot for rid, snapshot in query(platform, "referrals",
                                                  "SELECT id, snapshot FROM referrals")
              if same_id(rid, to_caritas["id"])]
    assert stored == [None]

    # The consent for another organisation still holds.
    awo_view = jmd.get(f"/api/v1/referrals/{to_awo['id']}").json()
    assert awo_view["snapshot_dropped_reason"] is None
    assert awo_view["participant"]["languages"] == ["fa", "de"]
    # And no new referral to Caritas without a new consent.
    refused = refer(jmd, participant["id"], "caritas-leverkusen", need_category="internship")
    assert refused.status_code == 409
    assert "consent" in refused.json()["errors"]


def test_an_erased_participant_leaves_nothing_personal_in_referrals(jmd, caritas, platform):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["identity", "needs"])
    referral = refer(jmd, participant["id"]).json()
    base = f"/api/v1/referrals/{referral['id']}"
    caritas.post(f"{base}/messages", json={"text": "Samira kommt Dienstag"})
    caritas.post(f"{base}/status", json={"status": "rejected", "reason": "Samira ist zu alt"})

    assert jmd.delete(f"/api/v1/participants/{participant['id']}").status_code == 204

    seen = wait_for(lambda: snapshot_dropped(caritas, referral["id"], "participant_erased"),
                    timeout=30, what="referrals erasing the participant")
    assert seen["participant"] is None
    assert seen["status"] == "rejected"  # the figures stay
    sender_view = jmd.get(base).json()
    assert sender_view["note"] is None
    assert [m["text"] for m in caritas.get(f"{base}/messages").json()] == [None]
    assert [h["reason"] for h in jmd.get(f"{base}/history").json()] == [None, None]
    rows = [row[1:] for row in query(platform, "referrals",
                                     "SELECT id, pseudonym, note, snapshot FROM referrals")
            if same_id(row[0], referral["id"])]
    assert rows == [(None, None, None)]
    assert refer(jmd, participant["id"]).status_code == 404


def test_intake_down_gives_503_and_nothing_is_stored(jmd, platform):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    settings = ServiceSettings(
        name="referrals", database_url=platform.database_urls["referrals"],
        redis_url=platform.redis_url, oidc=settings_for(platform),
        client_id="referrals-service", client_secret="demo-referrals-secret",
        service_urls={**platform.service_urls, "intake": f"http://127.0.0.1:{free_port()}"},
        http_timeout_seconds=1.0, relay_interval_seconds=1.0,
    )
    app = create_app(settings)
    before = query(platform, "referrals", "SELECT count(*) FROM referrals")
    outbox_before = query(platform, "referrals", "SELECT count(*) FROM outbox")

    response = app.test_client().post(
        "/api/v1/referrals",
        json={"participant_id": participant["id"], "to_org": "caritas-leverkusen",
              "need_category": "language_course"},
        headers={"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"},
    )

    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["status"] == "Service Unavailable"
    assert "intake" in response.json["message"] and "nothing was saved" in response.json["message"]
    assert query(platform, "referrals", "SELECT count(*) FROM referrals") == before
    assert query(platform, "referrals", "SELECT count(*) FROM outbox") == outbox_before
    app.extensions["buendnis"].db.dispose()


def test_intakes_art_15_export_gets_everything_referrals_holds(jmd, caritas, platform):
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["languages"])
    referral = refer(jmd, participant["id"]).json()
    base = f"/api/v1/referrals/{referral['id']}"
    caritas.post(f"{base}/status", json={"status": "accepted"})
    caritas.post(f"{base}/messages", json={"text": "Willkommen"})
    caritas.post(f"{base}/appointments", json={"start": "2031-05-05T10:00:00+02:00",
                                               "end": "2031-05-05T11:00:00+02:00",
                                               "mode": "phone"})
    url = f"{platform.service_urls['referrals']}/internal/participants/{participant['id']}/export"
    as_intake = {"Authorization": f"Bearer {platform.service_token('intake')}"}

    response = requests.get(url, headers=as_intake, timeout=10)

    assert response.status_code == 200, response.text
    (exported,) = response.json()["referrals"]
    assert exported["id"] == referral["id"]
    assert exported["participant_id"] == participant["id"]
    assert exported["note"] == "Bitte Sprachkurs ab März"
    assert exported["participant"]["languages"] == ["fa", "de"]
    assert [h["status"] for h in exported["history"]] == ["requested", "accepted"]
    assert [m["text"] for m in exported["messages"]] == ["Willkommen"]
    assert [a["mode"] for a in exported["appointments"]] == ["phone"]

    # The owner comes from the referrals themselves: a claimed owner_org changes nothing.
    claimed = requests.get(url, params={"owner_org": "caritas-leverkusen"},
                           headers=as_intake, timeout=10)
    assert claimed.json() == response.json()
    as_person = requests.get(
        url, timeout=10,
        headers={"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"},
    )
    assert as_person.status_code == 403
