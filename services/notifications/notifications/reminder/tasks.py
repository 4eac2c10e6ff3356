"""The dispatcher as a beat-triggered task. Reminders are rows that this task claims when due,
not far-future Celery ETAs (which Redis redelivers once its visibility timeout has passed)."""
from __future__ import annotations

from datetime import timedelta

from buendnis_common.service import ServiceRuntime
from notifications.config import NotificationsConfig
from notifications.delivery.dispatch import Dispatcher

DISPATCH_TASK = "notifications.dispatch"


def register(runtime: ServiceRuntime, config: NotificationsConfig) -> None:
    # Not shared: in a process with several Celery apps (tests) a shared task would run with
    # the first app's runtime.
    @runtime.celery.task(name=DISPATCH_TASK, shared=False)
    def dispatch() -> dict:
        stats = Dispatcher(runtime=runtime, config=config).run()
        return {"claimed": stats.claimed, **stats.outcomes}

    interval = config.dispatch_interval_seconds
    runtime.celery.conf.beat_schedule = {
        **(runtime.celery.conf.beat_schedule or {}),
        "dispatch-reminders": {
            "task": DISPATCH_TASK,
            "schedule": timedelta(seconds=interval),
            # A run that waited longer than an interval is superseded by the next one.
            "options": {"queue": runtime.name, "expires": max(interval, 1.0)},
        },
    }
