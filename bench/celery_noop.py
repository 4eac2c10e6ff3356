"""A bare Celery app for ``bench/events.py``: the broker's rate on this machine, as a baseline.

One task that does nothing, with the settings the services' event task has (JSON, late
acknowledgement, prefetch multiplier 1, results ignored), so the event pipeline's figure can be
given as a share of what Celery over this Redis moves at all. The last task of a run marks the
run done in Redis (a queue is consumed in order by one worker process).

    celery -A bench.celery_noop worker -Q bench-noop --concurrency 1
"""
from __future__ import annotations

import os

import redis
from celery import Celery

QUEUE = "bench-noop"
DONE_KEY = "bench:noop:done"

app = Celery("bench-noop", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(run: str, last: bool = False) -> None:
    if last:
        redis.Redis.from_url(app.conf.broker_url).set(DONE_KEY, run)
