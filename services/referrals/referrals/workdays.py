"""Working days in North Rhine-Westphalia: no weekends, no public holidays.

A referral's response time counts working days from the moment it was sent: five working days
after Thursday 10:00 before Easter is the Monday a week after Easter Monday, 10:00 (Good Friday
and Easter Monday do not count, nor the weekend).
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

LOCAL_TIME = ZoneInfo("Europe/Berlin")


class WorkingCalendar:
    def __init__(self, subdivision: str = "NW") -> None:
        self.holidays = holidays.country_holidays("DE", subdiv=subdivision)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day, ``days`` working days after ``start``'s date (in UTC)."""
        if start.tzinfo is None:
            raise ValueError("start must carry its offset")
        local = start.astimezone(LOCAL_TIME)
        day = local.date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        due = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=LOCAL_TIME)
        return due.astimezone(UTC)
