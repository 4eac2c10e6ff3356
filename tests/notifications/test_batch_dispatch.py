"""Reminders that fall due together go out as a batch: the participants' contacts fetched from
intake in one request (consent still decided per person, at that moment), and their e-mails
sent over one SMTP connection, each exactly once."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.notifications.conftest import (
    Users,
    book,
    now,
    sleep_until,
    wait_reminders,
)

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def test_a_batch_of_reminders_goes_out_once_each_over_one_smtp_connection(reminders, users):
    count = 6
    # All begin at the same moment: the reminders of each offset fall due together.
    start = now() + timedelta(seconds=8 + 12 + count * 4)
    bookings = [book(users, start=start) for _ in range(count)]
    # One participant's consent ends before the reminders fall due: theirs are not sent, the
    # others' in the same batch are.
    ended = bookings[-1]
    jmd = users["cw.jmd-leverkusen"]
    (consent,) = jmd.get(f"/api/v1/participants/{ended.participant['id']}/consents").json()
    withdrawn = jmd.delete(f"/api/v1/participants/{ended.participant['id']}/consents/"
                           f"{consent['id']}")
    assert withdrawn.status_code == 204, withdrawn.text
    assert now() < start - timedelta(seconds=8), "booking took longer than planned"

    for booking in bookings[:-1]:
        wait_reminders(jmd, booking.appointment_id, count=2, status="sent", timeout=60,
                       recipient="participant")
    cancelled = wait_reminders(jmd, ended.appointment_id, count=2, status="cancelled",
                               timeout=60, recipient="participant")
    assert {r["reason"] for r in cancelled if r["recipient"] == "participant"} == {"no_consent"}
    sleep_until(start)  # anything sent twice would have arrived by now

    assert reminders.mail.to(ended.email) == []
    mails = {b.email: sorted(reminders.mail.to(b.email), key=lambda m: m.at)
             for b in bookings[:-1]}
    keys = Counter(m.key for received in mails.values() for m in received)
    assert len(keys) == 2 * (count - 1) and set(keys.values()) == {1}, keys  # once each
    # The first reminders of all participants were one batch, the second ones another: each
    # batch went over one SMTP connection.
    for index in (0, 1):
        batch = [received[index] for received in mails.values()]
        assert len({m.connection for m in batch}) == 1, [m.connection for m in batch]
    assert {m.connection for received in mails.values() for m in received} != {""}

