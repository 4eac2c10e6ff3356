"""A consent that runs out ends sharing as a withdrawal does, checked at the moment of use; and a
withdrawal racing a referral's creation leaves no shared data behind.

The date is moved with the platform's test clock (``BUENDNIS_TEST_CLOCK_FILE``, honoured only in
development): a consent valid until today is expired "tomorrow" in every process at once."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import event, select

from buendnis_common.settings import ServiceSettings, SettingsError
from buendnis_common.timeutil import TEST_CLOCK_FILE, berlin_today, date_shift
from referrals.app import create_app
from referrals.referral import consent_ends
from referrals.referral.models import Referral
from tests.referrals.conftest import query, refer, register, same_id
from tests.support.platform import wait_for
from tests.test_token_verifier import settings_for

pytestmark = pytest.mark.platform


@pytest.fixture
def clock(platform):
    """Moves every process's date by whole days; back to the real date afterwards."""
    path = Path(platform.env[TEST_CLOCK_FILE])

    def shift(days: int) -> None:
        path.write_text(str(days))

    yield shift
    path.unlink(missing_ok=True)


def grant_until(client, participant_id: str, recipient: str, categories: list[str], until):
    response = client.post(
        f"/api/v1/participants/{participant_id}/consents",
        json={"recipient_org": recipient, "data_categories": categories, "purpose": "referral",
              "valid_until": until.isoformat()},
    )
    assert response.status_code == 201, response.text
    return response.json()


def stored_snapshot(platform, referral_id: str):
    rows = [row[1:] for row in query(
        platform, "referrals",
        "SELECT id, snapshot, snapshot_dropped_reason FROM referrals")
        if same_id(row[0], referral_id)]
    (row,) = rows
    return row


def consent_ended_entries(client, referral_id: str) -> list[dict]:
    entries = client.get("/api/v1/notifications",
                         params={"kind": "referral.consent_ended", "page_size": 100}).json()
    return [e for e in entries if e.get("referral_id") == referral_id]


def test_an_expired_consent_is_refused_at_once_and_dropped_with_both_sides_told(
        jmd, caritas, platform, clock):
    participant = register(jmd)
    grant_until(jmd, participant["id"], "caritas-leverkusen", ["identity", "contact"],
                berlin_today())
    read_one = refer(jmd, participant["id"]).json()
    unread_one = refer(jmd, participant["id"], need_category="internship").json()
    assert caritas.get(f"/api/v1/referrals/{read_one['id']}").json()["participant"][
        "identity"]["given_name"] == "Samira"

    # Intake's expiry sweep stopped: what follows is the check at the moment of use alone.
    platform.stop("intake-beat")
    try:
        clock(1)  # tomorrow: the consent's last valid day is over
        seen = caritas.get(f"/api/v1/referrals/{read_one['id']}").json()
        assert seen["participant"] == {"pseudonym": participant["pseudonym"]}
        assert seen["snapshot_dropped_reason"] == "consent_expired"
        assert seen["shared_categories"] == []
        assert "Samira" not in str(seen) and "+4917" not in str(seen)
        assert stored_snapshot(platform, read_one["id"]) == (None, "consent_expired")
        # Every internal sharing route asks the consent now too: no snapshot, no contact.
        sharing = requests.get(
            f"{platform.service_urls['intake']}/internal/participants/{participant['id']}"
            "/sharing", params={"recipient_org": "caritas-leverkusen"}, timeout=10,
            headers={"Authorization": f"Bearer {platform.service_token('referrals')}"})
        assert sharing.json()["consent"] is None and sharing.json()["snapshot"] == {}
        contact = requests.get(
            f"{platform.service_urls['intake']}/internal/participants/{participant['id']}"
            "/contact", params={"recipient_org": "caritas-leverkusen"}, timeout=10,
            headers={"Authorization": f"Bearer {platform.service_token('notifications')}"})
        assert contact.json()["consent"] is False and "+4917" not in contact.text
        refused = refer(jmd, participant["id"], need_category="employment")
        assert refused.status_code == 409, refused.text
        # The other referral, which nobody read, still holds its snapshot: no sweep ran.
        assert stored_snapshot(platform, unread_one["id"])[1] is None
    finally:
        platform.start("intake-beat")

    # The sweep finds the expired consent and referrals drops what it held under it.
    wait_for(lambda: stored_snapshot(platform, unread_one["id"]) == (None, "consent_expired"),
             timeout=60, what="the expiry sweep dropping the unread referral's snapshot")
    consents = jmd.get(f"/api/v1/participants/{participant['id']}/consents").json()
    assert [c["valid"] for c in consents] == [False]
    # Both sides hear of it: the case worker who made the referral, and the receiver's.
    for referral in (read_one, unread_one):
        for client in (jmd, caritas):
            (entry,) = wait_for(lambda c=client, r=referral: consent_ended_entries(c, r["id"]),
                                timeout=30, what="an inbox entry about the ended consent")
            assert entry["data"]["reason"] == "consent_expired"
            assert "Samira" not in str(entry)
    awo = platform.as_user("cw.awo-leverkusen")
    assert consent_ended_entries(awo, read_one["id"]) == []


def test_a_consent_is_valid_through_its_last_day(jmd, caritas, platform, clock):
    participant = register(jmd)
    grant_until(jmd, participant["id"], "caritas-leverkusen", ["languages"], berlin_today())
    referral = refer(jmd, participant["id"]).json()
    clock(0)
    seen = caritas.get(f"/api/v1/referrals/{referral['id']}").json()
    assert seen["participant"]["languages"] == ["fa", "de"]
    assert seen["snapshot_dropped_reason"] is None


def test_the_test_clock_is_refused_outside_development(monkeypatch, tmp_path):
    path = tmp_path / "days"
    path.write_text("3")
    monkeypatch.setenv(TEST_CLOCK_FILE, str(path))
    monkeypatch.setenv("BUENDNIS_ENV", "development")
    assert date_shift().days == 3
    monkeypatch.setenv("BUENDNIS_ENV", "production")
    with pytest.raises(SettingsError, match=TEST_CLOCK_FILE):
        berlin_today()
    monkeypatch.delenv(TEST_CLOCK_FILE)
    assert date_shift().days == 0


def test_a_withdrawal_racing_the_referral_leaves_no_shared_data(jmd, caritas, platform,
                                                                monkeypatch):
    """The participant withdraws after referrals asked intake and checked its list of
    withdrawn consents, but before it committed the referral; and (on PostgreSQL, where the
    two transactions do not wait for each other) referrals' worker handles the withdrawal in
    that gap, when the referral is not yet visible to it. Referrals must not keep the snapshot.
    """
    participant = register(jmd)
    consent = grant_until(jmd, participant["id"], "caritas-leverkusen", ["identity", "contact"],
                          berlin_today())
    # The referrals service in this process signs its events as the platform's services do.
    for name in ("EVENT_SIGNING_KEY", "REALM_FILE"):
        if name in platform.env:
            monkeypatch.setenv(name, platform.env[name])
    settings = ServiceSettings(
        name="referrals", database_url=platform.database_urls["referrals"],
        redis_url=platform.redis_url, oidc=settings_for(platform),
        client_id="referrals-service", client_secret="demo-referrals-secret",
        service_urls=platform.service_urls, http_timeout_seconds=10.0,
        relay_interval_seconds=1.0,
    )
    app = create_app(settings)
    runtime = app.extensions["buendnis"]
    interleaved = []

    def withdraw_before_commit(session):
        if interleaved or not any(isinstance(o, Referral) for o in session.new):
            return
        interleaved.append("withdrawn")
        withdrawn = jmd.delete(
            f"/api/v1/participants/{participant['id']}/consents/{consent['id']}")
        assert withdrawn.status_code == 204
        if runtime.db.is_postgres:
            # On SQLite the worker waits for this transaction's write lock; on PostgreSQL it
            # goes ahead, and we wait until it has handled the withdrawal.
            wait_for(lambda: [r for r in query(
                platform, "referrals", "SELECT consent_id FROM withdrawn_consents")
                if same_id(r[0], consent["id"])], timeout=30,
                what="referrals' worker handling the withdrawal")
            interleaved.append("handled before the commit")

    event.listen(runtime.db.Session, "before_commit", withdraw_before_commit)
    try:
        response = app.test_client().post(
            "/api/v1/referrals",
            json={"participant_id": participant["id"], "to_org": "caritas-leverkusen",
                  "need_category": "language_course"},
            headers={"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"},
        )
    finally:
        event.remove(runtime.db.Session, "before_commit", withdraw_before_commit)
        runtime.db.dispose()
    assert response.status_code == 201, response.get_data(as_text=True)
    assert interleaved[0] == "withdrawn"
    referral_id = response.json["id"]

    assert wait_for(lambda: stored_snapshot(platform, referral_id)[1], timeout=30,
                    what="no snapshot left") == "consent_withdrawn"
    assert stored_snapshot(platform, referral_id)[0] is None
    seen = caritas.get(f"/api/v1/referrals/{referral_id}").json()
    assert seen["participant"] == {"pseudonym": participant["pseudonym"]}
    assert "Samira" not in str(seen)
    # Both sides hear of the withdrawal, once.
    for client in (jmd, caritas):
        (entry,) = wait_for(lambda c=client: consent_ended_entries(c, referral_id),
                            timeout=30, what="an inbox entry about the withdrawal")
        assert entry["data"]["reason"] == "consent_withdrawn"


def test_the_sweep_drops_a_snapshot_held_past_the_consents_last_day(referrals_app):
    """The safety net when intake's expiry event never comes (and intake cannot be asked):
    referrals knows the consent's last valid day and drops the snapshot after it."""
    runtime = referrals_app.extensions["buendnis"]
    today = berlin_today()

    def held(valid_until, created_minutes_ago=10) -> uuid.UUID:
        at = datetime.now(UTC) - timedelta(minutes=created_minutes_ago)
        referral = Referral(
            id=uuid.uuid4(), participant_id=uuid.uuid4(), pseudonym="TN-ABCDE",
            from_org="jmd-leverkusen", to_org="caritas-leverkusen", alliance="leverkusen",
            need_category="language_course", status="requested", consent_id=uuid.uuid4(),
            consent_valid_until=valid_until, shared_categories=["identity"],
            snapshot={"identity": {"given_name": "Samira"}}, sender_user="cw.jmd-leverkusen",
            sender_user_id=str(uuid.uuid4()), created_at=at, updated_at=at, due_at=at)
        with runtime.db.transaction() as session:
            session.add(referral)
        return referral.id

    lapsed = held(today - timedelta(days=1))
    last_day = held(today)
    unconfirmed = held(None)  # intake could not confirm it after the commit

    assert consent_ends.sweep(runtime, today=today) == 1  # intake is not reachable here

    with runtime.db.transaction() as session:
        rows = {r.id: r for r in session.scalars(select(Referral))}
        outbox = session.scalars(select(runtime.models.outbox).where(
            runtime.models.outbox.type == "referral.snapshot_dropped")).all()
    assert (rows[lapsed].snapshot, rows[lapsed].snapshot_dropped_reason) == (
        None, "consent_expired")
    assert rows[last_day].snapshot == {"identity": {"given_name": "Samira"}}
    assert rows[unconfirmed].snapshot is not None  # kept, and not shown until confirmed
    assert [e.data["referral_id"] for e in outbox] == [str(lapsed)]
    assert outbox[0].data["reason"] == "consent_expired" and "Samira" not in str(outbox[0].data)
    assert consent_ends.sweep(runtime, today=today) == 0
    celery = referrals_app.extensions["celery"]
    assert celery.conf.beat_schedule["consent-sweep"]["task"] == "referrals.consent_sweep"
