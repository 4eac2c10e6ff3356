"""Each reminder goes out once: a worker killed in the middle of sending, two dispatchers at
work at the same time, or a provider whose answer gets lost never make a second message."""
from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    now,
    patch_appointment,
    reminders_of,
    same_id,
    sleep_until,
    sql,
    wait_reminders,
)
from tests.support.platform import PATIENCE, wait_for

# Workers killed within a second of a reminder's hand-over, reminders seconds apart: `make test`
# runs it alone, after the rest, where a crowded machine does not move those seconds.
pytestmark = [pytest.mark.platform, pytest.mark.alone]


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def sent_key(world, reminder_id: str) -> str:
    rows = sql(world.platform, "notifications", "SELECT id, idempotency_key FROM reminders")
    return next(key for row_id, key in rows if same_id(row_id, reminder_id))


def running_workers(world) -> list[str]:
    return [name for name, process in world.platform.processes.items()
            if name.startswith("notifications-worker") and process.poll() is None]


def kill_all_workers_but_a_new_one(world) -> None:
    """Start a fresh notifications worker, then SIGKILL every other one (mid-send): the fresh one
    is ready to take over, as another replica would be, and the reminders still due do not wait
    for a worker to start (seconds on a crowded machine). Only where the old worker is held
    longer than a worker takes to start (the server's slow answer after the message)."""
    others = running_workers(world)
    world.start_extra("worker")
    for name in others:
        world.kill(name)


def kill_all_workers_then_start_one(world) -> None:
    """SIGKILL every notifications worker at once (mid-send), then start a fresh one: the kill
    comes while the worker still waits for the server, well within its SMTP timeout, whatever
    a new worker's start costs on a crowded machine."""
    for name in running_workers(world):
        world.kill(name)
    world.start_extra("worker")


def test_a_worker_killed_after_handing_over_the_email_does_not_cause_a_second_one(
        reminders, users):
    # Room for a new worker to start and the lease to run out before the reminders' last chance
    # (more on a crowded machine).
    start = now() + timedelta(seconds=14 * PATIENCE)
    address = f"killed.after.{random.randrange(10**9)}@example.org"
    # The server takes the message, then keeps the worker waiting for its answer.
    slow = reminders.mail.behave(address, delay_before_data_reply=60, times=1)
    booking = book(users, start=start, email=address)
    assert slow.arrived.wait(timeout=30), "the first reminder never reached the server"
    kill_all_workers_but_a_new_one(reminders)

    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=60)
    first = next(r for r in found if r["recipient"] == "participant" and r["offset"] == "8s")
    # The worker died waiting for the answer: the server may have it, so it is not sent again,
    # and the case worker reads that it may not have arrived.
    assert first["confirmed"] is False
    uncertain = [e for e in inbox(jmd, kind="reminder.unconfirmed")
                 if e["appointment_id"] == booking.appointment_id]
    assert [e["reminder_id"] for e in uncertain] == [first["id"]]
    assert "may not have arrived" in jmd.get(
        "/api/v1/notifications", params={"kind": "reminder.unconfirmed"},
        headers={"Accept-Language": "en"}).json()[0]["text"]
    sleep_until(max(start, now() + timedelta(seconds=3)))
    keys = Counter(m.key for m in reminders.mail.to(address))
    assert len(keys) == 2 and set(keys.values()) == {1}, keys


def test_a_worker_killed_before_handing_over_leaves_the_message_to_another_worker(
        reminders, users):
    address = f"killed.before.{random.randrange(10**9)}@example.org"
    booking = book(users, start=now() + timedelta(hours=3), email=address)
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4)
    # The server keeps the worker waiting before it may send the message at all.
    slow = reminders.mail.behave(address, delay_before_rcpt_reply=60, times=1)
    later = now() + timedelta(hours=4)
    moved = patch_appointment(caritas, booking.appointment_id, {
        "start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()})
    assert moved.status_code == 200, moved.text
    assert slow.arrived.wait(timeout=30), "the notice of the move never reached the server"
    kill_all_workers_then_start_one(reminders)

    def notice():
        found = [r for r in reminders_of(jmd, booking.appointment_id) if r["kind"] == "moved"]
        return found if found and found[0]["status"] == "sent" else None

    (sent,) = wait_for(notice, timeout=60, what="the notice sent by the new worker")
    # The first try left no trace at the server and no delivery record: it was taken back from
    # the dead worker, not retried after an error, and is not counted as a try.
    assert sent["confirmed"] is True and sent["attempts"] == 1
    attempts = sql(reminders.platform, "notifications",
                   "SELECT d.attempt, d.outcome FROM deliveries d JOIN reminders r "
                   "ON r.id = d.reminder_id WHERE r.idempotency_key = :key",
                   key=sent_key(reminders, sent["id"]))
    assert attempts == [(1, "accepted")]
    received = reminders.mail.to(address)
    assert len(received) == 1, [m.key for m in received]


def test_two_dispatchers_at_once_send_every_reminder_exactly_once(reminders, users):
    reminders.start_extra("worker")
    reminders.start_extra("beat")
    assert len(running_workers(reminders)) >= 2
    # Ten bookings through the gateway before the first reminders fall due (8 s before the
    # start), on a crowded machine too.
    start = now() + timedelta(seconds=30 * PATIENCE)
    bookings = []
    for _ in range(10):
        address = f"busy.{random.randrange(10**9)}@example.org"
        reminders.mail.behave(address, delay_before_data_reply=0.3)  # a busy server
        bookings.append(book(users, start=start, email=address))
    jmd = users["cw.jmd-leverkusen"]
    for booking in bookings:
        wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=60)
    sleep_until(start)
    keys = Counter(m.key for b in bookings for m in reminders.mail.to(b.email))
    assert len(keys) == 20 and set(keys.values()) == {1}, keys
    claimed_by = sql(reminders.platform, "notifications",
                     "SELECT DISTINCT claimed_by FROM reminders WHERE recipient = 'participant' "
                     "AND status = 'sent' AND claimed_by IS NOT NULL")
    assert len(claimed_by) >= 2, claimed_by  # both dispatchers took part


def test_an_sms_whose_answer_was_lost_is_sent_again_and_the_provider_keeps_it_once(
        reminders, users):
    number = f"+49170{random.randrange(10**6, 10**7)}"
    reminders.sms.slow[number] = (1, 3.0)  # longer than the adapter waits for an answer
    start = now() + timedelta(seconds=14)
    booking = book(users, start=start, phone=number, preferred_channel="sms", language="ar")
    jmd = users["cw.jmd-leverkusen"]
    found = wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=40)
    assert {r["channel"] for r in found if r["recipient"] == "participant"} == {"sms"}
    requests = Counter(reminders.sms.requests_to(number))
    assert sorted(requests.values()) == [1, 2]  # the first was asked twice, with one key
    messages = reminders.sms.to(number)
    assert len(messages) == 2 and len({m["key"] for m in messages}) == 2
    assert all(m["text"].startswith("\u200f") for m in messages)  # Arabic, right to left
