"""Benchmark: the event pipeline, from referrals' outbox to reminders planned in notifications,
as a share of what bare Celery moves over the same Redis in the same run.

Starts Redis, the referrals worker and beat (whose sweep relays the outbox) and one
notifications worker, as the tests do (SQLite, or PostgreSQL with BUENDNIS_TEST_PG_URL). Each
round then

1. runs N no-op Celery tasks through one bare worker (``bench/celery_noop.py``, the event task's
   settings): the broker's rate, the baseline;
2. commits N ``appointment.booked`` events to referrals' outbox in one transaction, as a burst of
   bookings leaves them, and times them until notifications has planned all 2·N reminders (one
   offset, ``REMINDER_OFFSETS=10m``, for the participant and the case worker): relay, broker,
   signature check, handler;
3. checks that every event took effect exactly once (N processed ids, N appointments, 2·N
   reminders).

Prints each round and the median and spread of events/s and of the ratio to raw tasks/s.

    .venv/bin/python bench/events.py [--events 10000] [--rounds 3] [--raw 5000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from celery import Celery
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from buendnis_common.db import Database  # noqa: E402
from buendnis_common.events import Outbox  # noqa: E402
from tests.support.platform import BIN, Platform, wait_for  # noqa: E402

SENDER = "5b47324b-9b61-5fe1-9cb2-5039497adf31"  # cw.jmd-leverkusen in the realm file


def scalar(url: str, statement: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement)).scalar()
    finally:
        engine.dispose()


def raw_rate(platform: Platform, count: int) -> float:
    """Tasks/s of a bare Celery worker: from the first publish to the last task run."""
    from bench.celery_noop import DONE_KEY, QUEUE

    env = {**platform.env, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), platform.env.get("PYTHONPATH")]))}
    log = open(platform.logs / "noop-worker.log", "ab")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "bench.celery_noop", "worker", "-Q", QUEUE, "--concurrency",
         "1", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", f"noop-{uuid.uuid4().hex[:6]}@%h"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis.from_url(platform.redis_url)
    celery = Celery(broker=platform.redis_url)
    try:
        run = uuid.uuid4().hex
        # The worker is up once a first task has run.
        celery.send_task("bench.noop", args=["warm-up", True], queue=QUEUE)
        wait_for(lambda: client.get(DONE_KEY) == b"warm-up", timeout=60,
                 what="the bare worker answering", interval=0.05)
        started = time.perf_counter()
        with celery.producer_or_acquire() as producer:
            for i in range(count):
                celery.send_task("bench.noop", args=[run, i == count - 1], queue=QUEUE,
                                 producer=producer)
        wait_for(lambda: client.get(DONE_KEY) == run.encode(), timeout=600,
                 what="the bare worker running every task", interval=0.02)
        return count / (time.perf_counter() - started)
    finally:
        celery.close()
        client.close()
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


def booked(count: int) -> list[dict]:
    start = datetime.now(UTC) + timedelta(days=3)
    return [{
        "referral_id": uuid.uuid4(), "participant_id": uuid.uuid4(),
        "from_org": "jmd-leverkusen", "to_org": "caritas-leverkusen", "alliance": "leverkusen",
        "need_category": "language_course", "sender_user_id": SENDER,
        "appointment_id": uuid.uuid4(), "start": start + timedelta(seconds=i),
        "end": start + timedelta(seconds=i, hours=1), "mode": "in_person", "status": "booked",
    } for i in range(count)]


def event_rate(platform: Platform, count: int) -> tuple[float, float]:
    """Events/s from the outbox's commit to the last reminder planned; and the commit's time."""
    from referrals.db import MODELS

    referrals, notifications = (platform.database_urls[s] for s in ("referrals",
                                                                     "notifications"))
    before = scalar(notifications, "SELECT count(*) FROM reminders")
    handled = scalar(notifications, "SELECT count(*) FROM processed_events")
    items = booked(count)
    database = Database(referrals)
    outbox = Outbox(source="referrals", db=database, model=MODELS.outbox,
                    publisher=lambda *_: None)  # the worker's sweep publishes, not this
    started = time.perf_counter()
    with database.transaction() as session:
        outbox.emit_many(session, "appointment.booked", items)
    committed = time.perf_counter()
    database.dispose()
    wait_for(lambda: scalar(notifications, "SELECT count(*) FROM reminders") >= before + 2 * count,
             timeout=1800, what="every reminder planned", interval=0.1)
    rate = count / (time.perf_counter() - committed)
    planned = scalar(notifications, "SELECT count(*) FROM reminders") - before
    processed = scalar(notifications, "SELECT count(*) FROM processed_events") - handled
    assert planned == 2 * count, f"{planned} reminders planned for {count} events"
    assert processed == count, f"{processed} events recorded as handled of {count}"
    return rate, committed - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--raw", type=int, default=5_000, help="no-op tasks for the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        platform = Platform(Path(workdir), extra_env={
            "LOG_LEVEL": "WARNING", "REMINDER_OFFSETS": "10m"})
        try:
            platform.migrate()
            for name in ("redis", "web-redis", "referrals-worker", "referrals-beat",
                         "notifications-worker"):
                platform.start(name)
            platform.wait_redis()
            for name in ("referrals-worker", "notifications-worker"):
                platform.wait_log(name, "ready.")
            return run(platform, args)
        finally:
            platform.close()


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f}, min {min(values):.0f}, "
            f"max {max(values):.0f}")


def run(platform: Platform, args) -> int:
    print(f"database: {'PostgreSQL' if platform.postgres else 'SQLite'}; one worker per "
          f"service; {args.events} appointment.booked events per round")
    rates, raws, ratios = [], [], []
    for round_ in range(1, args.rounds + 1):
        raw_before = raw_rate(platform, args.raw)
        rate, commit = event_rate(platform, args.events)
        raw_after = raw_rate(platform, args.raw)
        raw = (raw_before + raw_after) / 2
        rates.append(rate)
        raws.append(raw)
        ratios.append(rate / raw)
        print(f"round {round_}: {rate:.0f} events/s ({args.events / rate:.1f} s for "
              f"{args.events}, outbox commit {commit:.1f} s before); raw Celery "
              f"{raw_before:.0f} / {raw_after:.0f} tasks/s; ratio {rate / raw:.2f}",
              flush=True)
    print(f"events/s: {spread(rates)}")
    print(f"raw Celery tasks/s: {spread(raws)}")
    print(f"ratio events/s ÷ raw tasks/s: median {statistics.median(ratios):.2f}, "
          f"min {min(ratios):.2f}, max {max(ratios):.2f}")
    print(f"10,000 events take {10_000 / statistics.median(rates):.1f} s at the median rate")
    with open("/proc/loadavg") as load:
        print(f"load average (1, 5, 15 min): {' '.join(load.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
