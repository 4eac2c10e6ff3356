"""No SMS at night: a reminder whose time falls between 21:00 and 08:00 (Europe/Berlin) goes out
before the quiet hours begin, never after. Each test fixes the clock it plans with."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifications.appointment.models import Appointment
from notifications.config import NotificationsConfig, QuietHours
from notifications.reminder.quiet import in_quiet_hours, send_decision, sms_due
from notifications.reminder.service import plan

BERLIN = ZoneInfo("Europe/Berlin")
QUIET = QuietHours(time(21, 0), time(8, 0))
LEAD = timedelta(minutes=15)


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


class Collecting:
    """Stands in for the session: plan() only adds rows."""

    def __init__(self) -> None:
        self.added = []

    def add(self, row) -> None:
        self.added.append(row)


@pytest.fixture
def config(monkeypatch) -> NotificationsConfig:
    monkeypatch.setenv("REMINDER_OFFSETS", "24h,2h")
    monkeypatch.setenv("SMS_QUIET_HOURS", "21:00-08:00")
    monkeypatch.setenv("SMS_QUIET_HOURS_LEAD_MINUTES", "15")
    return NotificationsConfig.from_env()


def appointment_at(start: datetime) -> Appointment:
    return Appointment(id=uuid.uuid4(), referral_id=uuid.uuid4(), participant_id=uuid.uuid4(),
                       from_org="jmd-leverkusen", to_org="caritas-leverkusen", status="booked",
                       start=start.astimezone(UTC),
                       end=(start + timedelta(hours=1)).astimezone(UTC), mode="in_person",
                       sequence=0)


def planned(config, start: datetime, now: datetime) -> dict[tuple[str, str], object]:
    session = Collecting()
    plan(session=session, config=config, appointment=appointment_at(start),
         now=now.astimezone(UTC))
    return {(r.recipient, f"{r.offset_seconds // 3600}h"): r for r in session.added}


@pytest.mark.parametrize(("local", "quiet"), [
    ((2031, 3, 3, 20, 59), False), ((2031, 3, 3, 21, 0), True), ((2031, 3, 3, 23, 30), True),
    ((2031, 3, 4, 0, 0), True), ((2031, 3, 4, 7, 59), True), ((2031, 3, 4, 8, 0), False),
    ((2031, 7, 4, 22, 0), True),  # summer time: still local 22:00
])
def test_the_quiet_hours_are_21_to_8_berlin_time(local, quiet):
    assert in_quiet_hours(berlin(*local), QUIET) is quiet


def test_an_early_morning_reminder_goes_out_the_evening_before():
    assert sms_due(berlin(2031, 3, 4, 6, 30), quiet=QUIET, lead=LEAD) == berlin(
        2031, 3, 3, 20, 45)
    assert sms_due(berlin(2031, 3, 3, 22, 10), quiet=QUIET, lead=LEAD) == berlin(
        2031, 3, 3, 20, 45)
    assert sms_due(berlin(2031, 3, 4, 12, 0), quiet=QUIET, lead=LEAD) == berlin(2031, 3, 4, 12)
    assert sms_due(berlin(2031, 3, 4, 6, 30), quiet=None, lead=LEAD) == berlin(2031, 3, 4, 6, 30)


def test_a_reminder_falling_in_the_night_is_planned_before_it_not_after(config):
    # Booked on Monday morning for Tuesday 08:30: the 2 h reminder would come at 06:30.
    found = planned(config, berlin(2031, 3, 4, 8, 30), now=berlin(2031, 3, 3, 9, 0))
    participant = found[("participant", "2h")]
    assert participant.nominal_due_at == berlin(2031, 3, 4, 6, 30)
    assert participant.due_at == berlin(2031, 3, 3, 20, 45)
    assert participant.due_at < participant.nominal_due_at  # before, not after
    # The case worker's inbox has no quiet hours.
    assert found[("case_worker", "2h")].due_at == berlin(2031, 3, 4, 6, 30)
    # 24 h before is Monday 08:30, already past when booked at 09:00.
    assert found[("participant", "24h")].status == "cancelled"


def test_booked_just_before_the_quiet_hours_the_reminder_goes_out_at_once(config):
    now = berlin(2031, 3, 3, 20, 50)
    found = planned(config, berlin(2031, 3, 4, 8, 30), now=now)
    participant = found[("participant", "2h")]
    assert participant.status == "scheduled" and participant.due_at == now


def test_reminders_past_at_booking_are_cancelled_not_sent_late(config):
    found = planned(config, berlin(2031, 3, 4, 10, 0), now=berlin(2031, 3, 3, 12, 0))
    assert (found[("participant", "24h")].status, found[("participant", "24h")].cancel_reason) \
        == ("cancelled", "past_at_booking")
    assert found[("participant", "2h")].status == "scheduled"


def test_at_send_time_an_sms_in_the_night_is_not_sent_and_an_email_keeps_its_offset():
    start = berlin(2031, 3, 4, 8, 30)
    nominal = berlin(2031, 3, 4, 6, 30)
    evening = berlin(2031, 3, 3, 20, 45)
    assert send_decision(kind="reminder", channel="sms", now=evening, nominal_due_at=nominal,
                         start=start, quiet=QUIET) == ("send", None)
    # A worker that comes too late (or a retry) finds the night: never after.
    assert send_decision(kind="reminder", channel="sms", now=berlin(2031, 3, 3, 21, 5),
                         nominal_due_at=nominal, start=start, quiet=QUIET) == (
        "cancel", "quiet_hours")
    # E-mail has no quiet hours: it waits for its offset.
    assert send_decision(kind="reminder", channel="email", now=evening, nominal_due_at=nominal,
                         start=start, quiet=QUIET) == ("wait", nominal)
    assert send_decision(kind="reminder", channel="email", now=nominal, nominal_due_at=nominal,
                         start=start, quiet=QUIET) == ("send", None)


def test_a_notice_by_sms_at_night_waits_for_the_morning_unless_the_appointment_is_earlier():
    night = berlin(2031, 3, 3, 23, 0)
    assert send_decision(kind="cancellation", channel="sms", now=night, nominal_due_at=night,
                         start=berlin(2031, 3, 4, 10, 0), quiet=QUIET) == (
        "wait", berlin(2031, 3, 4, 8, 0))
    assert send_decision(kind="moved", channel="sms", now=night, nominal_due_at=night,
                         start=berlin(2031, 3, 4, 7, 30), quiet=QUIET) == (
        "cancel", "quiet_hours")
    assert send_decision(kind="moved", channel="email", now=night, nominal_due_at=night,
                         start=berlin(2031, 3, 4, 7, 30), quiet=QUIET) == ("send", None)


def test_quiet_hours_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("SMS_QUIET_HOURS", "22:30-07:15")
    assert NotificationsConfig.from_env().quiet_hours == QuietHours(time(22, 30), time(7, 15))
    monkeypatch.setenv("SMS_QUIET_HOURS", "off")
    assert NotificationsConfig.from_env().quiet_hours is None
    monkeypatch.setenv("SMS_QUIET_HOURS", "nachts")
    with pytest.raises(Exception, match="SMS_QUIET_HOURS"):
        NotificationsConfig.from_env()
