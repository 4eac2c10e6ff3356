"""Settings of the referrals service beyond what every service reads, from the environment."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from buendnis_common.settings import SettingsError, env_float, env_int, env_list, env_str
from referrals.workdays import WorkingCalendar


@dataclass(frozen=True)
class ReferralsConfig:
    # Working days a receiver has to answer a referral, per alliance, and the default.
    response_days: int = 5
    response_days_by_alliance: dict[str, int] = field(default_factory=dict)
    # Public holidays that do not count as working days (the `holidays` package, Germany).
    holiday_subdivision: str = "NW"
    overdue_sweep_seconds: float = 300.0

    def response_days_for(self, alliance: str | None) -> int:
        return self.response_days_by_alliance.get(alliance or "", self.response_days)

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """Working days without the public holidays of ``holiday_subdivision``."""
        return WorkingCalendar(self.holiday_subdivision)

    @classmethod
    def from_env(cls) -> ReferralsConfig:
        return cls(
            response_days=_positive(
                "REFERRAL_RESPONSE_DAYS", env_int("REFERRAL_RESPONSE_DAYS", 5)
            ),
            response_days_by_alliance=_per_alliance("REFERRAL_RESPONSE_DAYS_BY_ALLIANCE"),
            holiday_subdivision=env_str("HOLIDAY_SUBDIVISION", "NW"),
            overdue_sweep_seconds=env_float("OVERDUE_SWEEP_INTERVAL_SECONDS", 300.0),
        )


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


def _per_alliance(name: str) -> dict[str, int]:
    """``leverkusen=3,rhein-kreis-neuss=7`` → ``{"leverkusen": 3, "rhein-kreis-neuss": 7}``."""
    result: dict[str, int] = {}
    for part in env_list(name):
        alliance, sep, days = part.partition("=")
        if not sep or not alliance.strip() or not days.strip().isdigit():
            raise SettingsError(f"{name}: {part!r} is not like leverkusen=5")
        result[alliance.strip()] = _positive(name, int(days))
    return result
