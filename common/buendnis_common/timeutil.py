"""The platform's clock: UTC in storage, Europe/Berlin for the days people mean."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def berlin_today(now: datetime | None = None) -> date:
    return (now or datetime.now(BERLIN)).astimezone(BERLIN).date()


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
