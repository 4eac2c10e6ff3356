"""The reminders' figures for Prometheus (``buendnis_common.metrics``): each settled reminder by
outcome and, when sent, how late; and, read when the worker is scraped, how many are due and not
sent and how long the oldest of them has waited (a stopped dispatcher shows there, not in the
counters)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from buendnis_common import metrics
from buendnis_common.db import utcnow
from notifications.delivery.models import SCHEDULED, SENDING

# Sent (the inbox, a confirmed message), accepted by the provider (an SMS awaiting its
# delivery report) or handed over without an answer yet: the reminder went out.
HANDED_OVER = ("sent", "accepted", "unconfirmed")


def settled(items: Iterable[Any], outcomes: Iterable[str]) -> None:
    """``items`` (claimed reminders, or other rows of the dispatcher) and their outcomes."""
    now = utcnow()
    for item, outcome in zip(items, outcomes, strict=False):
        reminder = getattr(item, "reminder", None)
        if reminder is None:
            continue
        metrics.REMINDERS.labels(metrics.code(outcome)).inc()
        if outcome in HANDED_OVER and reminder.due_at is not None:
            metrics.REMINDER_LATENESS.observe(max(0.0, (now - reminder.due_at).total_seconds()))


def reading(runtime):
    from notifications.reminder.models import Reminder

    def read():
        now = utcnow()
        with runtime.db.Session() as session:
            due, oldest = session.execute(
                select(func.count(), func.min(Reminder.due_at))
                .where(Reminder.status.in_([SCHEDULED, SENDING]), Reminder.due_at <= now)).one()
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield metrics.gauge("buendnis_reminders_due", "Reminders due and not yet settled", due)
        yield metrics.gauge("buendnis_reminders_oldest_due_age_seconds",
                            "How long the oldest unsettled due reminder has waited (0 when none)",
                            max(0.0, age))

    return read
