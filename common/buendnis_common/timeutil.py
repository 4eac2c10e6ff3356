"""The platform's clock: UTC in storage, Europe/Berlin for the days people mean.

Whether a consent still holds is decided by the Berlin calendar day (``berlin_today``). Tests of
a running platform must be able to move that day forward, so that a consent valid until today is
expired "tomorrow" without waiting a day: ``BUENDNIS_TEST_CLOCK_FILE`` names a file holding a
whole number of days by which every process of the platform shifts its date. It is honoured only
in development (``BUENDNIS_ENV=development``, the default); with ``BUENDNIS_ENV=production`` a
process that finds the variable set refuses to go on, so the date can never be moved in
production. Without the variable (or without the file) the date is the real one.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .settings import SettingsError, is_development

BERLIN = ZoneInfo("Europe/Berlin")
TEST_CLOCK_FILE = "BUENDNIS_TEST_CLOCK_FILE"


def date_shift() -> timedelta:
    """The test clock's shift of the calendar date; nothing unless a test has set one."""
    path = os.environ.get(TEST_CLOCK_FILE)
    if not path:
        return timedelta(0)
    if not is_development():
        raise SettingsError(f"{TEST_CLOCK_FILE} is for tests only and refused outside "
                            "development; unset it")
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return timedelta(0)
    try:
        return timedelta(days=int(text or 0))
    except ValueError:
        raise SettingsError(f"{TEST_CLOCK_FILE}: a whole number of days, got {text!r}") from None


def berlin_today(now: datetime | None = None) -> date:
    """The Berlin calendar day of ``now``; without ``now``, today (on the test clock, if set)."""
    if now is not None:
        return now.astimezone(BERLIN).date()
    return (datetime.now(BERLIN) + date_shift()).date()


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
