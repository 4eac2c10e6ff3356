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

A burst calls for help: the beat's trigger starts one run on one worker, and the other workers
would join only at a later trigger, by chance. A run whose first claim comes back full (more is
due than one batch) puts one ``join`` trigger on the queue at once; a worker that is idle starts
a run of its own (which calls for help in turn when it too finds a full batch), one that is busy
passes the trigger on, at most ``JOIN_HOPS`` times (Redis hands the next message to the worker
that has waited longest, so it reaches an idle one if there is any). A burst costs at most
``JOIN_HOPS`` messages per run; a forged trigger only starts a run, as the beat does.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery.signals import worker_shutting_down

from buendnis_common.service import ServiceRuntime
from notifications import metrics as measure
from notifications.config import NotificationsConfig
from notifications.delivery.dispatch import STOPPING, Dispatcher

DISPATCH_TASK = "notifications.dispatch"
JOIN_HOPS = 3
_ONE_RUN = threading.Lock()
log = logging.getLogger(__name__)


def register(runtime: ServiceRuntime, config: NotificationsConfig) -> None:
    # Not shared: in a process with several Celery apps (tests) a shared task would run with
    # the first app's runtime.
    queue = runtime.own_queue("dispatch")

    interval = config.dispatch_interval_seconds

    def call_for_help(hops: int) -> None:
        try:
            runtime.celery.send_task(DISPATCH_TASK, kwargs={"join": hops}, queue=queue,
                                     expires=max(interval, 1.0))
        except Exception:  # noqa: BLE001 - the broker unreachable: the run goes on alone
            log.warning("dispatch: could not ask the other workers for help", exc_info=True)

    @runtime.celery.task(name=DISPATCH_TASK, shared=False)
    def dispatch(join: int = 0) -> dict:
        # From the broker: anything but a small whole number is a trigger of the beat's kind.
        hops = join if type(join) is int and 0 < join <= JOIN_HOPS else 0
        if not _ONE_RUN.acquire(blocking=False):
            if hops and hops < JOIN_HOPS:
                call_for_help(hops + 1)
            return {"claimed": 0, "already_running": 1}
        try:
            stats = Dispatcher(runtime=runtime, config=config).run(
                on_full_batch=lambda: call_for_help(1))
        finally:
            _ONE_RUN.release()
        return {"claimed": stats.claimed, **stats.outcomes}

    runtime.celery.conf.worker_pool = "threads"
    runtime.readings.append(measure.reading(runtime))  # reminders due, for Prometheus
    worker_shutting_down.connect(_stop_dispatching, weak=False)

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
