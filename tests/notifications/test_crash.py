"""A notifications worker dies, or is stopped, in the middle of a batch of reminders: every
reminder still reaches its participant once, before the appointment, and in seconds.

A platform of its own, with one reminder a minute before each appointment (room for a worker to
die and come back), a short lease (6 s, renewed every 2 s by the worker's heartbeat), four
sending threads, and an SMTP server slow enough (0.4 s before it accepts the recipient, 0.6 s
before it answers the message) that a kill lands in the middle of the batch: some threads
waiting to hand their message over, some waiting for the server's answer to it.
"""
from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    now,
    running_platform,
    sql,
)
from tests.support.platform import PATIENCE, wait_for

# A worker killed in the middle of a batch to a slow server, its SMTP conversations timed:
# `make test` runs it alone, after the rest, where a crowded machine does not stretch them.
pytestmark = [pytest.mark.platform, pytest.mark.alone]

THREADS = 4
CRASH_ENV = {
    "REMINDER_OFFSETS": "60s",
    "REMINDER_LEASE_SECONDS": "6",
    "REMINDER_SEND_CONCURRENCY": str(THREADS),
    "REMINDER_DISPATCH_BUDGET_SECONDS": "10",
    # A live worker's conversation with the slow server does not time out on a crowded machine
    # (that would be one more uncertain message), and still ends within the lease.
    "SMTP_TIMEOUT_SECONDS": str(2 * PATIENCE),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from running_platform(tmp_path_factory.mktemp("crash"), env=CRASH_ENV)


@pytest.fixture(scope="module")
def users(world):
    return Users(world.platform)


def workers(world) -> list[str]:
    return [name for name, process in world.platform.processes.items()
            if name.startswith("notifications-worker") and process.poll() is None]


def participant_reminders(world, appointments: set[str]) -> dict[str, tuple]:
    """The participants' reminders of these appointments: key → (status, confirmed, attempts,
    claimed_by, reminder id)."""
    rows = sql(world.platform, "notifications",
               "SELECT idempotency_key, status, confirmed, attempts, claimed_by, id, "
               "appointment_id FROM reminders WHERE recipient = 'participant'")
    return {row[0]: (row[1], None if row[2] is None else bool(row[2]), *row[3:6])
            for row in rows if str(uuid.UUID(str(row[6]))) in appointments}


def book_batch(world, users, count: int, prefix: str):
    """``count`` appointments, all beginning at the same moment, so that their reminders fall due
    together a minute before; every participant's mail server is slow.

    The batch falls due as soon as it can have been booked: two bookings first (an hour ahead,
    apart from the batch; the first of a platform's life is slow) measure how long a booking
    takes on this machine now, and the batch gets twice the faster one per booking, times the
    suite's patience, plus 5 s."""
    took = []
    for _ in range(2):
        began = time.monotonic()
        book(users, start=now() + timedelta(hours=1))
        took.append(time.monotonic() - began)
    per_booking = max(0.5, 2 * min(took)) * PATIENCE
    start = now() + timedelta(seconds=60 + 5 + count * per_booking)
    bookings = []
    for _ in range(count):
        address = f"{prefix}.{random.randrange(10**9)}@example.org"
        world.mail.behave(address, delay_before_rcpt_reply=0.4, delay_before_data_reply=0.6)
        bookings.append(book(users, start=start, email=address))
    assert now() < start - timedelta(seconds=60), (
        f"booking took longer than planned ({per_booking:.1f} s each)")
    appointments = {b.appointment_id for b in bookings}
    rows = wait_for(lambda: (found := participant_reminders(world, appointments))
                    and len(found) == count and found, timeout=30,
                    what="every reminder planned")
    return start, bookings, appointments, set(rows)


def received_keys(world, bookings) -> Counter:
    return Counter(m.key for b in bookings for m in world.mail.to(b.email))


def settled(world, appointments: set[str]) -> dict[str, tuple] | None:
    rows = participant_reminders(world, appointments)
    return rows if all(row[0] not in ("scheduled", "sending") for row in rows.values()) else None


def test_a_worker_killed_mid_batch_loses_no_reminder_and_sends_none_twice(world, users):
    count = 24
    start, bookings, appointments, keys = book_batch(world, users, count, "crash")
    # Kill in the middle of the batch: some delivered, most not yet.
    wait_for(lambda: len(received_keys(world, bookings)) >= 6, timeout=90, interval=0.05,
             what="the first messages of the batch")
    holders = {row[3] for key, row in participant_reminders(world, appointments).items()
               if key in keys and row[0] == "sending"}
    assert holders, "nothing in flight at the moment of the kill"
    killed_at = time.monotonic()
    for name in workers(world):
        world.kill(name)  # SIGKILL
    # Restarted as a container runtime would; its first dispatch takes its predecessor's claims.
    world.start_extra("worker")
    ready_at = time.monotonic()

    def claims_returned():
        rows = participant_reminders(world, appointments)
        return not [key for key, row in rows.items() if key in keys and row[3] in holders
                    and row[0] == "sending"]

    wait_for(claims_returned, timeout=30, interval=0.1, what="the dead worker's claims back")
    returned_at = time.monotonic()
    rows = wait_for(lambda: settled(world, appointments), timeout=60, interval=0.2,
                    what="every reminder settled")
    all_sent_at = time.monotonic()
    time.sleep(1.5)  # an answer still on its way from the slow server

    statuses = Counter(row[0] for row in rows.values())
    assert statuses == {"sent": count}, statuses  # none failed, none cancelled
    received = received_keys(world, bookings)
    assert set(received.values()) == {1}, received  # none twice
    uncertain = {key for key, row in rows.items() if row[1] is False}
    # At most the one message each killed sending thread had handed over without an answer.
    assert len(uncertain) <= THREADS, uncertain
    # Every other reminder reached the server; an uncertain one may or may not have.
    assert keys - uncertain <= set(received), keys - uncertain - set(received)
    # No try is counted for the crash: one attempt each.
    assert {row[2] for row in rows.values()} == {1}
    # The case worker reads which ones may not have arrived.
    reported = {e["reminder_id"] for e in inbox(users["cw.jmd-leverkusen"],
                                                 kind="reminder.unconfirmed")}
    assert {uuid.UUID(str(rows[key][4])) for key in uncertain} <= {
        uuid.UUID(r) for r in reported}
    # All before the appointment, and in seconds.
    assert now() < start
    print(f"\nSIGKILL mid-batch: {count} reminders, {len(uncertain)} uncertain; worker "
          f"restarted in {ready_at - killed_at:.1f} s; claims back {returned_at - ready_at:.1f} s "
          f"after it was ready; all sent {all_sent_at - killed_at:.1f} s after the kill")
    assert returned_at - ready_at < 10
    assert all_sent_at - killed_at < 45


def test_a_worker_stopped_mid_batch_gives_its_claims_back_at_once(world, users):
    count = 16
    start, bookings, appointments, keys = book_batch(world, users, count, "stopped")
    wait_for(lambda: len(received_keys(world, bookings)) >= 3, timeout=90, interval=0.05,
             what="the first messages of the batch")
    (name,) = workers(world)
    stopping_at = time.monotonic()
    world.platform.stop(name, signal.SIGTERM, timeout=20)  # warm shutdown
    stopped_after = time.monotonic() - stopping_at
    # Nothing is left claimed by the stopped worker: handed back, or answered and sent.
    rows = participant_reminders(world, appointments)
    assert not [key for key, row in rows.items() if row[0] == "sending"], rows
    given_back = [key for key, row in rows.items() if row[0] == "scheduled"]
    assert given_back, "the batch was over before the worker stopped"
    assert {rows[key][2] for key in given_back} == {0}  # not counted as a try
    assert stopped_after < 10, stopped_after

    world.start_extra("worker")
    rows = wait_for(lambda: settled(world, appointments), timeout=60, interval=0.2,
                    what="every reminder settled")
    time.sleep(1.5)
    assert Counter(row[0] for row in rows.values()) == {"sent": count}
    assert all(row[1] is True for row in rows.values())  # a warm stop leaves nothing uncertain
    received = received_keys(world, bookings)
    assert set(received) == keys and set(received.values()) == {1}, received
    assert now() < start
    print(f"\nSIGTERM mid-batch: stopped in {stopped_after:.1f} s, {len(given_back)} claims "
          "given back, all sent once")
