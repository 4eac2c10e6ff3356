"""Which service owns which public path."""
from __future__ import annotations

ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/v1/participants", "intake"),
    ("/api/v1/offers", "referrals"),
    ("/api/v1/referrals", "referrals"),
    ("/api/v1/appointments", "referrals"),
    ("/api/v1/reports", "referrals"),
    ("/api/v1/notifications", "notifications"),
    ("/api/v1/reminders", "notifications"),
)


def owner(path: str) -> str | None:
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None
