"""Appointments change after they are booked: a move replaces the pending reminders and tells
the participant, in a calendar entry that moves too; a cancellation cancels them and tells the
participant; an erased participant gets nothing more."""
from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar

from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    now,
    patch_appointment,
    reminders_of,
    sleep_until,
    sql,
    wait_reminders,
)
from tests.support.platform import wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def event_of(received) -> Calendar:
    calendar = Calendar.from_ical(received.calendar())
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_a_moved_appointment_replaces_its_reminders_and_moves_the_calendar_entry(
        reminders, users):
    first_start = now() + timedelta(minutes=30)
    booking = book(users, start=first_start)
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4, status="scheduled")

    new_start = now() + timedelta(seconds=14)
    moved = patch_appointment(caritas, booking.appointment_id, {
        "start": new_start.isoformat(), "end": (new_start + timedelta(hours=1)).isoformat()})
    assert moved.status_code == 200, moved.text

    found = wait_reminders(jmd, booking.appointment_id, count=4, reason="appointment_moved")
    old = [r for r in found if r["reason"] == "appointment_moved"]
    assert {r["status"] for r in old} == {"cancelled"}
    # The notice of the move goes out at once; the new reminders at their offsets.
    notice = wait_for(lambda: reminders.mail.to(booking.email), timeout=20,
                      what="the notice of the move")[0]
    calendar, event = event_of(notice)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == new_start.replace(microsecond=0)
    uid = str(event["UID"])

    wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=40)
    # "sent" is recorded just before the mail's last line reaches the server: allow it a moment.
    wait_for(lambda: len(reminders.mail.to(booking.email)) >= 3, timeout=10,
             what="three mails to the participant")
    mails = reminders.mail.to(booking.email)
    assert len(mails) == 3  # the notice and the two reminders at the new time
    for mail in mails:
        _calendar, later = event_of(mail)
        assert str(later["UID"]) == uid and later["SEQUENCE"] == 1
        assert mail.at < new_start
    assert [e for e in inbox(jmd, kind="appointment.moved")
            if e["appointment_id"] == booking.appointment_id]


def test_a_cancelled_appointment_cancels_its_reminders_and_tells_the_participant(
        reminders, users):
    booking = book(users, start=timedelta(seconds=14))
    start = booking.start
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    first = wait_reminders(jmd, booking.appointment_id, count=4, status="scheduled")
    uid_source = first[0]["appointment_id"]

    cancelled = patch_appointment(caritas, booking.appointment_id,
                                  {"status": "cancelled", "reason": "Beraterin krank"})
    assert cancelled.status_code == 200, cancelled.text
    found = wait_reminders(jmd, booking.appointment_id, count=4,
                           reason="appointment_cancelled")
    assert {r["status"] for r in found if r["kind"] == "reminder"} == {"cancelled"}
    notice = wait_for(lambda: reminders.mail.to(booking.email), timeout=20,
                      what="the cancellation notice")[0]
    calendar, event = event_of(notice)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["SEQUENCE"] == 1
    assert str(event["UID"]) == f"appointment-{uid_source}@buendnis"
    assert "Beraterin" not in notice.text()  # the reason is free text: it stays in referrals

    sleep_until(start + timedelta(seconds=1))
    assert len(reminders.mail.to(booking.email)) == 1  # no reminder after the cancellation
    statuses = {(r["kind"], r["status"]) for r in reminders_of(jmd, booking.appointment_id)}
    assert statuses == {("reminder", "cancelled"), ("cancellation", "sent")}
    assert [e for e in inbox(jmd, kind="appointment.cancelled")
            if e["appointment_id"] == booking.appointment_id]


def test_an_erased_participant_gets_no_more_reminders(reminders, users):
    booking = book(users, start=timedelta(seconds=14))
    start = booking.start
    jmd = users["cw.jmd-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4, status="scheduled")

    erased = jmd.delete(f"/api/v1/participants/{booking.participant['id']}")
    assert erased.status_code == 204
    found = wait_reminders(jmd, booking.appointment_id, count=4, reason="participant_erased")
    assert {r["status"] for r in found} == {"cancelled"}
    sleep_until(start + timedelta(seconds=1))
    assert reminders.mail.to(booking.email) == []
    assert [r["status"] for r in reminders_of(jmd, booking.appointment_id)] == ["cancelled"] * 4
    # A booking event arriving after the erasure plans nothing.
    rows = sql(reminders.platform, "notifications",
               "SELECT count(*) FROM participant_erasures")
    assert rows[0][0] >= 1


def test_only_the_referrals_two_organisations_see_the_reminders(reminders, users):
    booking = book(users, start=now() + timedelta(hours=2))
    wait_reminders(users["cw.jmd-leverkusen"], booking.appointment_id, count=4)
    assert len(reminders_of(users["cw.caritas-leverkusen"], booking.appointment_id)) == 4
    for outsider in ("cw.awo-leverkusen", "cw.stadt-meerbusch"):
        response = users[outsider].get("/api/v1/reminders",
                                       params={"appointment_id": booking.appointment_id})
        assert response.status_code == 404, response.text
    missing = users["cw.jmd-leverkusen"].get("/api/v1/reminders")
    assert missing.status_code == 422
