"""Every partner's inbox: a referral arrives at the receiving organisation's case workers; the
case worker who sent it hears when it is accepted, rejected, overdue or written about; entries
come newest first, page, filter by unread and are marked read per person; e-mail copies can be
switched off per kind."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from celery import Celery

from buendnis_common.events import EVENT_TASK, envelope_data
from tests.notifications.conftest import Users, inbox, maildir_messages, refer
from tests.support.platform import wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(platform):
    return Users(platform)


def entries_about(client, referral_id: str, **params) -> list[dict]:
    return [e for e in inbox(client, **params) if e["referral_id"] == referral_id]


def wait_entry(client, referral_id: str, kind: str, timeout: float = 30) -> dict:
    return wait_for(lambda: entries_about(client, referral_id, kind=kind)[0], timeout=timeout,
                    what=f"a {kind} entry", interval=0.3)


def set_status(client, referral_id: str, status: str, reason: str | None = None):
    body = {"status": status, **({"reason": reason} if reason else {})}
    response = client.post(f"/api/v1/referrals/{referral_id}/status", json=body)
    assert response.status_code == 200, response.text


def subject_of(platform, username: str) -> str:
    return jwt.decode(platform.token(username), options={"verify_signature": False})["sub"]


def test_a_new_referral_reaches_every_case_worker_of_the_receiving_organisation(users):
    _participant, referral = refer(users)
    caritas = users["cw.caritas-leverkusen"]
    entry = wait_entry(caritas, referral["id"], "referral.received")
    assert entry["addressed_to"] == "organization"
    assert entry["organization"] == "caritas-leverkusen"
    assert entry["read"] is False
    assert "Jugendmigrationsdienst Leverkusen" in entry["text"]
    assert entry["text"].startswith("Neue Vermittlung von")
    assert entry["data"]["need_category"] == "language_course"
    # Staff whose pages are in English read the same entry in English.
    english = caritas.get("/api/v1/notifications", headers={"Accept-Language": "en"}).json()
    (same,) = [e for e in english if e["id"] == entry["id"]]
    assert same["text"] == ("New referral from Jugendmigrationsdienst Leverkusen "
                            "(language course).")
    # Nobody else: not another organisation, not the core group member of the same one.
    for outsider in ("cw.awo-leverkusen", "core.caritas-leverkusen", "cw.jmd-leverkusen"):
        assert entries_about(users[outsider], referral["id"]) == []


def test_the_sender_hears_of_acceptance_rejection_and_messages(users):
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    _p, accepted = refer(users)
    _p, rejected = refer(users)
    set_status(caritas, accepted["id"], "accepted")
    set_status(caritas, rejected["id"], "rejected", "Kurs ist voll")
    entry = wait_entry(jmd, accepted["id"], "referral.accepted")
    assert entry["addressed_to"] == "user" and "Caritasverband" in entry["text"]
    refusal = wait_entry(jmd, rejected["id"], "referral.rejected")
    assert "voll" not in str(refusal)  # free text stays in referrals

    posted = caritas.post(f"/api/v1/referrals/{accepted['id']}/messages",
                          json={"text": "Bitte Zeugnisse mitbringen"})
    assert posted.status_code == 201, posted.text
    wait_entry(jmd, accepted["id"], "referral.message_posted")
    answered = jmd.post(f"/api/v1/referrals/{accepted['id']}/messages",
                        json={"text": "Mache ich"})
    assert answered.status_code == 201, answered.text
    wait_entry(caritas, accepted["id"], "referral.message_posted")
    # Each side hears of the other's message, not of its own.
    assert len(entries_about(jmd, accepted["id"], kind="referral.message_posted")) == 1
    assert len(entries_about(caritas, accepted["id"], kind="referral.message_posted")) == 1


def test_an_overdue_referral_is_told_to_the_case_worker_who_sent_it(platform, users):
    jmd = users["cw.jmd-leverkusen"]
    _p, referral = refer(users)
    # The referrals service's sweep finds it overdue after days; its event, as it would send it.
    data = envelope_data("referral.overdue", {
        "referral_id": referral["id"], "participant_id": referral["participant_id"],
        "from_org": "jmd-leverkusen", "to_org": "caritas-leverkusen", "alliance": "leverkusen",
        "need_category": "language_course",
        "sender_user_id": subject_of(platform, "cw.jmd-leverkusen"),
        "due_at": datetime.now(UTC) - timedelta(hours=1)})
    envelope = {"id": str(uuid.uuid4()), "type": "referral.overdue", "source": "referrals",
                "occurred_at": datetime.now(UTC).isoformat(), "data": data}
    celery = Celery(broker=platform.redis_url)
    try:
        for _ in range(2):  # delivered twice: one entry
            celery.send_task(EVENT_TASK, args=[platform.sign_event(envelope)],
                             queue="notifications")
    finally:
        celery.close()
    entry = wait_entry(jmd, referral["id"], "referral.overdue")
    assert "Antwortfrist" in entry["text"]
    wait_for(lambda: platform.log("notifications-worker").count(envelope["id"]) >= 1,
             timeout=20, what="the duplicate handled")
    assert len(entries_about(jmd, referral["id"], kind="referral.overdue")) == 1


def test_the_inbox_pages_newest_first_filters_unread_and_marks_read(users):
    caritas = users["cw.caritas-leverkusen"]
    referrals = [refer(users)[1] for _ in range(3)]
    for referral in referrals:
        wait_entry(caritas, referral["id"], "referral.received")
    page = caritas.get("/api/v1/notifications", params={"page_size": 2, "page": 1})
    assert page.status_code == 200
    assert len(page.json()) == 2
    assert '"total"' in page.headers["X-Pagination"].replace(" ", "")
    newest = inbox(caritas)
    times = [e["created_at"] for e in newest]
    assert times == sorted(times, reverse=True)
    assert [e["referral_id"] for e in newest[:3]] == [r["id"] for r in reversed(referrals)]

    target = newest[0]
    marked = caritas.post(f"/api/v1/notifications/{target['id']}/read")
    assert marked.status_code == 200 and marked.json()["read"] is True
    again = caritas.post(f"/api/v1/notifications/{target['id']}/read")
    assert again.json()["read_at"] == marked.json()["read_at"]
    unread_ids = {e["id"] for e in inbox(caritas, unread="true")}
    assert target["id"] not in unread_ids and newest[1]["id"] in unread_ids
    assert target["id"] in {e["id"] for e in inbox(caritas, unread="false")}
    # Another organisation's entry does not exist for the caller.
    other = users["cw.awo-leverkusen"].post(f"/api/v1/notifications/{target['id']}/read")
    assert other.status_code == 404


def test_e_mail_copies_go_out_unless_switched_off_for_that_kind(platform, users):
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    choice = jmd.request("PUT", "/api/v1/notifications/preferences",
                     json={"email_copies": {"referral.accepted": False}})
    assert choice.status_code == 200, choice.text
    assert choice.json()["email_copies"]["referral.accepted"] is False
    assert choice.json()["email_copies"]["referral.message_posted"] is True
    assert jmd.get("/api/v1/notifications/preferences").json() == choice.json()
    bad = jmd.request("PUT", "/api/v1/notifications/preferences",
                  json={"email_copies": {"birthday": True}})
    assert bad.status_code == 422

    _p, referral = refer(users)
    set_status(caritas, referral["id"], "accepted")
    posted = caritas.post(f"/api/v1/referrals/{referral['id']}/messages",
                          json={"text": "Termin folgt"})
    assert posted.status_code == 201
    accepted = wait_entry(jmd, referral["id"], "referral.accepted")
    message = wait_entry(jmd, referral["id"], "referral.message_posted")

    def copies_of(entry: dict) -> list:
        prefix = f"<copy-{uuid.UUID(entry['id']).hex}-"
        return [m for m in maildir_messages(platform)
                if m["Message-ID"].strip().startswith(prefix)]

    (copy,) = wait_for(lambda: copies_of(message), timeout=30,
                       what="the e-mail copy of the message entry")
    assert copy["To"] == "cw.jmd-leverkusen@buendnis.example"
    assert "Nachricht" in copy["Subject"]
    assert copies_of(accepted) == []  # switched off
    jmd.request("PUT", "/api/v1/notifications/preferences", json={"email_copies": {}})
