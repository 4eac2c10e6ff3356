"""The dispatcher as a beat-triggered task. Reminders are rows that this task claims when due,
not far-future Celery ETAs (which Redis redelivers once its visibility timeout has passed).

The worker runs its tasks in threads of its own process (``worker_pool = "threads"``), so that
the warm shutdown on SIGTERM reaches a running dispatch: it stops claiming, gives back what it
has not handed over and returns once the messages already handed over are answered.

The dispatch task has a queue of its own (``notifications.dispatch``, ``ServiceRuntime.own_queue``)
and its own thread in every worker: a burst of reminders being sent (a run lasts up to
``REMINDER_DISPATCH_BUDGET_SECONDS``) never holds up the events, and a burst of events never
holds up the next run. One run at a time per process: a trigger that arrives while a run is
under way returns at once (that run goes on until nothing is due), so that the events' thread is
never taken by a second run.
"""
from __future__ import annotations

import threading
from datetime import timedelta

from celery.signals import worker_shutting_down

from buendnis_common.service import ServiceRuntime
from notifications import metrics as measure
from notifications.config import NotificationsConfig
from notifications.delivery.dispatch import STOPPING, Dispatcher

DISPATCH_TASK = "notifications.dispatch"
_ONE_RUN = threading.Lock()


def register(runtime: ServiceRuntime, config: NotificationsConfig) -> None:
    # Not shared: in a process with several Celery apps (tests) a shared task would run with
    # the first app's runtime.
    queue = runtime.own_queue("dispatch")

    @runtime.celery.task(name=DISPATCH_TASK, shared=False)
    def dispatch() -> dict:
        if not _ONE_RUN.acquire(blocking=False):
            return {"claimed": 0, "already_running": 1}
        try:
            stats = Dispatcher(runtime=runtime, config=config).run()
        finally:
            _ONE_RUN.release()
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
            "options": {"queue": queue, "expires": max(interval, 1.0)},
        },
    }


def _stop_dispatching(**_kwargs) -> None:
    STOPPING.set()
