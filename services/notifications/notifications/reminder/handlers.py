"""The dispatcher as a beat-triggered task. Reminders are rows that this task claims when due,
not far-future Celery ETAs (which Redis redelivers once its visibility timeout has passed).

The worker runs its tasks in threads of its own process (``worker_pool = "threads"``), so that
the warm shutdown on SIGTERM reaches a running dispatch: it stops claiming, gives back what it
has not handed over and returns once the messages already handed over are answered.
"""
from __future__ import annotations

from datetime import timedelta

from celery.signals import worker_shutting_down

from buendnis_common.service import ServiceRuntime
from notifications import metrics as measure
from notifications.config import NotificationsConfig
from notifications.delivery.dispatch import STOPPING, Dispatcher

DISPATCH_TASK = "notifications.dispatch"


def register(runtime: ServiceRuntime, config: NotificationsConfig) -> None:
    # Not shared: in a process with several Celery apps (tests) a shared task would run with
    # the first app's runtime.
    @runtime.celery.task(name=DISPATCH_TASK, shared=False)
    def dispatch() -> dict:
        stats = Dispatcher(runtime=runtime, config=config).run()
        return {"claimed": stats.claimed, **stats.outcomes}

    runtime.celery.conf.worker_pool = "threads"
    runtime.readings.append(measure.reading(runtime))  # reminders due, for Prometheus
    worker_shutting_down.connect(_stop_dispatching, weak=False)

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


def _stop_dispatching(**_kwargs) -> None:
    STOPPING.set()
