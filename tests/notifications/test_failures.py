"""When the mail server or the SMS provider fails: temporary failures are tried again with
backoff; after the last try the reminder is failed and the case worker's inbox says so. A
participant who chose no channel gets nothing."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    now,
    sleep_until,
    sql,
    wait_reminders,
)
from tests.support.platform import PATIENCE, wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def test_a_mail_server_that_keeps_refusing_fails_the_reminder_and_tells_the_case_worker(
        reminders, users):
    address = f"busy.mailbox.{random.randrange(10**9)}@example.org"
    reminders.mail.behave(address, refuse="451 4.2.1 Mailbox busy, try again later")
    # Room for three tries before the appointment (more on a crowded machine).
    start = now() + timedelta(seconds=16 * PATIENCE)
    booking = book(users, start=start, email=address)
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=2, status="failed", timeout=40)
    failed = [r for r in found if r["status"] == "failed"]
    assert {r["recipient"] for r in failed} == {"participant"}
    first = next(r for r in failed if r["offset"] == "8s")
    assert first["attempts"] == 3  # REMINDER_MAX_ATTEMPTS
    # The two reminders' tries interleave on a crowded machine: each message's own, in order.
    tries = reminders.mail.tries_to(address)
    assert len(tries) == 2 and max(len(times) for times in tries.values()) == 3, tries
    for times in tries.values():
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        # backoff: about 1 s, then 2 s
        assert all(gap >= floor for gap, floor in zip(gaps, (0.8, 1.7), strict=False)), gaps
    assert reminders.mail.to(address) == []

    entries = wait_for(
        lambda: [e for e in inbox(jmd, kind="reminder.failed")
                 if e["appointment_id"] == booking.appointment_id] or None,
        timeout=20, what="the case worker told")
    assert {e["data"]["error"] for e in entries} == {"smtp_message_451"}
    assert "nicht zugestellt" in entries[0]["text"]
    outcomes = sql(reminders.platform, "notifications",
                   "SELECT outcome FROM deliveries WHERE masked_address = :masked",
                   masked=f"{address[0]}***@example.org")
    assert ("temporary_failure",) in outcomes


def test_a_temporary_refusal_is_retried_and_the_reminder_arrives_once(reminders, users):
    address = f"flaky.{random.randrange(10**9)}@example.org"
    reminders.mail.behave(address, refuse="421 4.7.0 Try again later", times=1)
    booking = book(users, start=timedelta(seconds=14), email=address)
    start = booking.start
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=40)
    first = next(r for r in found if r["recipient"] == "participant" and r["offset"] == "8s")
    assert first["attempts"] == 2
    sleep_until(start)
    assert len(reminders.mail.to(address)) == 2


def test_an_sms_provider_that_keeps_failing_fails_the_reminder(reminders, users):
    number = f"+49171{random.randrange(10**6, 10**7)}"
    reminders.sms.failing[number] = 503
    booking = book(users, start=timedelta(seconds=14), phone=number,
                   preferred_channel="sms")
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=2, status="failed", timeout=40)
    assert {r["channel"] for r in found if r["status"] == "failed"} == {"sms"}
    assert len(reminders.sms.requests_to(number)) >= 3
    assert reminders.sms.to(number) == []
    entries = [e for e in inbox(jmd, kind="reminder.failed")
               if e["appointment_id"] == booking.appointment_id]
    assert {e["data"]["error"] for e in entries} == {"sms_503"}


def test_a_participant_who_chose_no_channel_gets_no_message(reminders, users):
    address = f"quiet.please.{random.randrange(10**9)}@example.org"
    booking = book(users, start=timedelta(seconds=12), email=address, preferred_channel="none")
    start = booking.start
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=2, reason="channel_none",
                           timeout=30)
    mine = [r for r in found if r["recipient"] == "participant"]
    assert {(r["status"], r["channel"]) for r in mine} == {("cancelled", "none")}
    wait_reminders(jmd, booking.appointment_id, count=2, status="sent", timeout=30)
    sleep_until(start)
    assert reminders.mail.to(address) == []
