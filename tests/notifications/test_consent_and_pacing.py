"""Reminders under the participant's consent, and no flood of messages from moving an
appointment: on the platform with its real settings (reminders a day and two hours before, change
notices at most one per ``CHANGE_NOTICE_INTERVAL``, 30 minutes)."""
from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from tests.notifications.conftest import (
    Users,
    book,
    maildir_messages,
    now,
    parse,
    patch_appointment,
    reminders_of,
    wait_reminders,
)
from tests.support.platform import wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(platform):
    return Users(platform)


def grant(users, participant_id: str, categories: list[str]) -> dict:
    response = users["cw.jmd-leverkusen"].post(
        f"/api/v1/participants/{participant_id}/consents",
        json={"recipient_org": "caritas-leverkusen", "data_categories": categories,
              "purpose": "referral",
              "valid_until": (date.today() + timedelta(days=60)).isoformat()})
    assert response.status_code == 201, response.text
    return response.json()


def withdraw(users, participant_id: str, consent_id: str) -> None:
    response = users["cw.jmd-leverkusen"].delete(
        f"/api/v1/participants/{participant_id}/consents/{consent_id}")
    assert response.status_code == 204, response.text


def consents_of(users, participant_id: str) -> list[dict]:
    return users["cw.jmd-leverkusen"].get(
        f"/api/v1/participants/{participant_id}/consents").json()


def move(users, booking, start) -> None:
    moved = patch_appointment(users["cw.caritas-leverkusen"], booking.appointment_id, {
        "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()})
    assert moved.status_code == 200, moved.text


def notices(client, appointment_id: str) -> list[dict]:
    return [r for r in reminders_of(client, appointment_id) if r["kind"] == "moved"]


def mails_to(platform, address: str) -> list:
    return [m for m in maildir_messages(platform) if address in str(m["To"])]


def test_the_receiver_sees_how_a_reminder_went_only_with_consent_to_contact(platform, users):
    """The channel (SMS, e-mail, none) and why nothing was sent (no address, no channel) tell
    the receiver about the person's contact data: only under a consent to share it."""
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    booking = book(users, start=now() + timedelta(days=3), preferred_channel="none")
    move(users, booking, now() + timedelta(days=4))
    wait_reminders(jmd, booking.appointment_id, count=1, kind="moved",
                   reason="channel_none", timeout=60)

    def participant_rows(client):
        return [r for r in reminders_of(client, booking.appointment_id)
                if r["recipient"] == "participant"]

    # The sender (the person's own organisation) sees it all.
    assert {r["channel"] for r in participant_rows(jmd) if r["kind"] == "moved"} == {"none"}
    # The receiver, whose consent covers identity and languages only, sees neither.
    rows = participant_rows(caritas)
    assert rows and {(r["channel"], r["reason"]) for r in rows} == {(None, None)}
    assert "channel_none" not in str(reminders_of(caritas, booking.appointment_id))
    case_worker_rows = [r for r in reminders_of(caritas, booking.appointment_id)
                        if r["recipient"] == "case_worker"]
    assert {r["channel"] for r in case_worker_rows} == {"inbox"}

    # With a consent to share the contact data, the receiver sees how it went ...
    contact = grant(users, booking.participant["id"], ["contact"])
    moved_rows = [r for r in participant_rows(caritas) if r["kind"] == "moved"]
    assert [(r["channel"], r["reason"]) for r in moved_rows] == [("none", "channel_none")]
    # ... and no longer once it is withdrawn.
    withdraw(users, booking.participant["id"], contact["id"])
    assert {(r["channel"], r["reason"]) for r in participant_rows(caritas)} == {(None, None)}


def test_nothing_goes_to_the_participant_once_the_consent_has_ended(platform, users):
    jmd = users["cw.jmd-leverkusen"]
    booking = book(users, start=now() + timedelta(days=3))
    (consent,) = consents_of(users, booking.participant["id"])
    withdraw(users, booking.participant["id"], consent["id"])
    move(users, booking, now() + timedelta(days=5))

    wait_reminders(jmd, booking.appointment_id, count=1, kind="moved", status="cancelled",
                   timeout=60)
    (notice,) = notices(jmd, booking.appointment_id)
    assert notice["reason"] == "no_consent"
    assert mails_to(platform, booking.email) == []


def test_moving_an_appointment_again_and_again_sends_one_notice_per_interval(platform, users):
    """The attack: move the appointment over and over, each move a message to the person.
    The first notice goes out at once; the moves after it coalesce into one notice with the
    latest time, held back until 30 minutes after the last message sent."""
    jmd = users["cw.jmd-leverkusen"]
    booking = book(users, start=now() + timedelta(days=3))
    move(users, booking, now() + timedelta(days=4))
    wait_reminders(jmd, booking.appointment_id, count=1, kind="moved", status="sent",
                   timeout=60)
    (first,) = notices(jmd, booking.appointment_id)
    wait_for(lambda: mails_to(platform, booking.email), timeout=30, what="the first notice")

    for hours in range(1, 9):
        move(users, booking, now() + timedelta(days=4, hours=hours))
    wait_for(lambda: len(notices(jmd, booking.appointment_id)) == 9, timeout=60,
             what="every move handled")
    # Two rounds of the reminder dispatch (every 5 s) later, still one message only.
    for _second in range(12):
        time.sleep(1)
        assert len(mails_to(platform, booking.email)) == 1

    found = notices(jmd, booking.appointment_id)
    sent = [n for n in found if n["status"] == "sent"]
    waiting = [n for n in found if n["status"] == "scheduled"]
    cancelled = [n for n in found if n["status"] == "cancelled"]
    assert [n["id"] for n in sent] == [first["id"]]
    assert len(waiting) == 1
    assert len(cancelled) == 7 and {n["reason"] for n in cancelled} == {"appointment_moved"}
    assert parse(waiting[0]["due_at"]) >= parse(first["sent_at"]) + timedelta(minutes=30)
    assert len(mails_to(platform, booking.email)) == 1
