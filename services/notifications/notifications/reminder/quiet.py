"""Quiet hours: no SMS at night (default 21:00–08:00, Europe/Berlin). A reminder that would fall
there goes out before they begin, never after; pure functions of the times they are given, so
that they are tested with any clock."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buendnis_common.timeutil import BERLIN
from notifications.config import QuietHours


def in_quiet_hours(moment: datetime, quiet: QuietHours | None) -> bool:
    if quiet is None:
        return False
    local = moment.astimezone(BERLIN).time()
    if quiet.start <= quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def _window_start(moment: datetime, quiet: QuietHours) -> datetime:
    """The beginning of the quiet window that ``moment`` lies in."""
    local = moment.astimezone(BERLIN)
    day = local.date()
    if quiet.start > quiet.end and local.time() < quiet.end:
        day -= timedelta(days=1)  # after midnight: the window began the evening before
    return datetime.combine(day, quiet.start, tzinfo=BERLIN).astimezone(UTC)


def window_end(moment: datetime, quiet: QuietHours) -> datetime:
    """The end of the quiet window that ``moment`` lies in."""
    local = moment.astimezone(BERLIN)
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=BERLIN).astimezone(UTC)


def sms_due(nominal: datetime, *, quiet: QuietHours | None, lead: timedelta) -> datetime:
    """When an SMS meant for ``nominal`` may go out: ``nominal`` itself, or — when that falls in
    the quiet hours — ``lead`` before they begin."""
    if not in_quiet_hours(nominal, quiet):
        return nominal
    return _window_start(nominal, quiet) - lead


def send_decision(*, kind: str, channel: str, now: datetime, nominal_due_at: datetime,
                  start: datetime, quiet: QuietHours | None,
                  early: timedelta = timedelta(seconds=1)) -> tuple[str, datetime | str | None]:
    """What to do with a claimed message to the participant once the channel is known:
    ``("send", None)``, ``("wait", until)`` or ``("cancel", reason)``.

    - Nothing goes out once the appointment has begun.
    - A reminder by SMS never goes out in the quiet hours: it was due before them (see
      ``sms_due``); if that moment has passed, it is not sent late.
    - A reminder by e-mail was due early only in case it were an SMS: it waits for its offset.
    - A notice (moved, cancelled) by SMS in the quiet hours waits for the morning, unless the
      appointment is before that.
    """
    if now >= start:
        return "cancel", "too_late"
    in_quiet = channel == "sms" and in_quiet_hours(now, quiet)
    if kind == "reminder":
        if in_quiet:
            return "cancel", "quiet_hours"
        if channel != "sms" and now < nominal_due_at - early:
            return "wait", nominal_due_at
        return "send", None
    if in_quiet:
        morning = window_end(now, quiet)
        return ("cancel", "quiet_hours") if morning >= start else ("wait", morning)
    return "send", None
