"""A case worker books an appointment; the participant and the case worker are reminded at the
configured offsets before it (here 8 s and 4 s), each reminder exactly once."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from icalendar import Calendar

from notifications.messages.render import RLM
from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    now,
    parse,
    same_id,
    seconds_between,
    sleep_until,
    sql,
    wait_reminders,
)
from tests.support.platform import wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def test_participant_and_case_worker_are_reminded_at_each_offset(reminders, users):
    booking = book(users, start=timedelta(seconds=16))
    start = booking.start
    jmd = users["cw.jmd-leverkusen"]
    planned = wait_reminders(jmd, booking.appointment_id, count=4, status="scheduled")
    assert sorted((r["recipient"], r["offset"]) for r in planned) == [
        ("case_worker", "4s"), ("case_worker", "8s"), ("participant", "4s"),
        ("participant", "8s")]

    done = wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=40)
    # "sent" is recorded just before the mail's last line reaches the server: allow it a moment.
    wait_for(lambda: len(reminders.mail.to(booking.email)) >= 2, timeout=10,
             what="two mails to the participant")
    mails = reminders.mail.to(booking.email)
    assert len(mails) == 2, [m.message["Subject"] for m in mails]
    for offset, mail in zip((8, 4), sorted(mails, key=lambda m: m.at), strict=True):
        due = start - timedelta(seconds=offset)
        # Not before its time, and promptly after it.
        assert 0 <= seconds_between(due, mail.at) < 5, (offset, due, mail.at)
        calendar = Calendar.from_ical(mail.calendar())
        (event,) = calendar.walk("VEVENT")
        assert str(calendar["METHOD"]) == "REQUEST" and event["SEQUENCE"] == 0
        assert str(event["UID"]) == f"appointment-{booking.appointment_id}@buendnis"
        assert event.decoded("DTSTART") == start.replace(microsecond=0)
        # In Farsi, the participant's language, right to left.
        assert mail.message["Content-Language"] == "fa"
        assert mail.text().startswith(RLM) and 'dir="rtl"' in mail.html()
        assert "Caritasverband Leverkusen" in mail.text()
    assert len({m.key for m in mails}) == 2

    for reminder in done:
        assert reminder["status"] == "sent" and reminder["confirmed"] is True
        assert parse(reminder["sent_at"]) >= parse(reminder["due_at"])
    assert {r["channel"] for r in done if r["recipient"] == "participant"} == {"email"}

    entries = [e for e in inbox(jmd, kind="appointment.reminder")
               if e["appointment_id"] == booking.appointment_id]
    assert sorted(e["data"]["offset_seconds"] for e in entries) == [4, 8]
    assert all(e["addressed_to"] == "user" for e in entries)
    # The Caritas, who booked it, is not the one reminded.
    assert not [e for e in inbox(users["cw.caritas-leverkusen"], kind="appointment.reminder")
                if e["appointment_id"] == booking.appointment_id]

    sleep_until(start + timedelta(seconds=2))
    assert len(reminders.mail.to(booking.email)) == 2  # nothing more came


def test_reminders_already_past_at_booking_are_not_sent_late(reminders, users):
    booking = book(users, start=timedelta(seconds=6))  # the 8 s reminder is past already
    start = booking.start
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=2, status="sent", timeout=30)
    late = [r for r in found if r["offset"] == "8s"]
    assert {(r["status"], r["reason"]) for r in late} == {("cancelled", "past_at_booking")}
    sleep_until(start + timedelta(seconds=1))
    mails = reminders.mail.to(booking.email)
    assert len(mails) == 1
    assert 0 <= seconds_between(start - timedelta(seconds=4), mails[0].at) < 5


def test_a_redelivered_booking_event_plans_the_reminders_once(reminders, users):
    booking = book(users, start=now() + timedelta(minutes=30))
    jmd = users["cw.jmd-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4)
    platform = reminders.platform
    (event_id,) = [row[0] for row in _booked_events(platform, booking.appointment_id)]
    # The relay publishes the row again, as after a crash between publishing and marking it.
    sql(platform, "referrals", "UPDATE outbox SET published_at = NULL WHERE event_id = :id",
        id=event_id)
    wait_for(lambda: not sql(platform, "referrals", "SELECT seq FROM outbox WHERE "
                             "published_at IS NULL"), timeout=30, what="the relay again")
    wait_for(lambda: f"event {event_id_text(event_id)}" in worker_logs(platform), timeout=30,
             what="the duplicate reaching a worker")
    assert len(wait_reminders(jmd, booking.appointment_id, count=4)) == 4


def event_id_text(stored) -> str:
    return str(uuid.UUID(str(stored)))


def worker_logs(platform) -> str:
    """Every notifications worker's log (earlier tests may have killed and replaced some)."""
    return "".join(path.read_text(errors="replace")
                   for path in platform.logs.glob("notifications-worker*.log"))


def _booked_events(platform, appointment_id):
    rows = sql(platform, "referrals", "SELECT event_id, data FROM outbox WHERE type = "
               "'appointment.booked'")
    return [row for row in rows
            if same_id((row[1] if isinstance(row[1], dict) else json.loads(row[1]))
                       ["appointment_id"], appointment_id)]


def test_the_participants_export_shows_reminders_masked_deliveries_and_inbox_entries(
        reminders, users):
    booking = book(users, start=timedelta(seconds=12))
    jmd = users["cw.jmd-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=40)
    participant_id = booking.participant["id"]
    response = jmd.get(f"/api/v1/participants/{participant_id}/export")
    assert response.status_code == 200, response.text
    held = response.json()["notifications"]
    assert sorted((r["recipient"], r["offset"], r["status"]) for r in held["reminders"]) == [
        ("case_worker", "4s", "sent"), ("case_worker", "8s", "sent"),
        ("participant", "4s", "sent"), ("participant", "8s", "sent")]
    assert [(d["channel"], d["outcome"]) for d in held["deliveries"]] == [
        ("email", "accepted"), ("email", "accepted")]
    assert {d["masked_address"] for d in held["deliveries"]} == {"s***@example.org"}
    assert booking.email not in json.dumps(held)  # only ever the masked address
    assert {e["kind"] for e in held["inbox"]} >= {"appointment.booked", "appointment.reminder"}

    assert jmd.delete(f"/api/v1/participants/{participant_id}").status_code == 204
    wait_for(lambda: sql(reminders.platform, "notifications",
                         "SELECT count(*) FROM participant_erasures")[0][0] >= 1,
             timeout=30, what="the erasure reaching notifications")

    def masked():
        return [row for row in sql(reminders.platform, "notifications",
                                   "SELECT participant_id, masked_address FROM deliveries")
                if row[0] is not None and same_id(row[0], participant_id)]

    wait_for(lambda: masked() and all(address is None for _, address in masked()), timeout=30,
             what="the masked addresses erased")
