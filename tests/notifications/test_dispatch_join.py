"""A burst calls idle workers to help (``reminder/handlers.py``): the trigger a run sends when
its first claim comes back full, passed on by a busy worker a bounded number of times, and a
forged trigger on the broker that can do no more than the beat's.

The notifications service in this process (``world``), its dispatch task called as a worker
would call it, and a real Redis server as its broker, read back as a worker would find it.
"""
from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from notifications.config import NotificationsConfig
from notifications.reminder import handlers
from notifications.reminder.models import Reminder
from tests.notifications.conftest import Users, book, now

QUEUE = "notifications.dispatch"


@pytest.fixture
def dispatch(world, redis_url):
    """The notifications service's dispatch task, sending to the real broker (emptied)."""
    runtime = world.runtime("notifications")
    runtime.celery.conf.broker_url = redis_url
    redis.Redis.from_url(redis_url).flushdb()
    return runtime.celery.tasks[handlers.DISPATCH_TASK]


def triggers(redis_url: str) -> list[dict]:
    """The kwargs of every dispatch trigger waiting on the queue, oldest first."""
    found = []
    for raw in reversed(redis.Redis.from_url(redis_url).lrange(QUEUE, 0, -1)):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        assert message["headers"]["task"] == handlers.DISPATCH_TASK and args == []
        found.append(kwargs)
    return found


def test_a_busy_worker_passes_a_join_on_at_most_join_hops_times(dispatch, redis_url):
    with handlers._ONE_RUN:  # a run is under way in this worker
        for hops in range(1, handlers.JOIN_HOPS + 1):
            assert dispatch.run(join=hops) == {"claimed": 0, "already_running": 1}
    # Each hop but the last passed on, one hop further; the last one ends there.
    assert triggers(redis_url) == [{"join": hops}
                                   for hops in range(2, handlers.JOIN_HOPS + 1)]


@pytest.mark.parametrize("forged", [True, 1.0, "1", -1, 0, handlers.JOIN_HOPS + 1, 10**9,
                                    [1], {"hops": 1}, None])
def test_a_forged_join_is_only_a_trigger_of_the_beats_kind(dispatch, redis_url, forged):
    with handlers._ONE_RUN:  # busy: a trigger of the beat's kind is dropped, never passed on
        assert dispatch.run(join=forged) == {"claimed": 0, "already_running": 1}
    assert triggers(redis_url) == []
    # Idle, with nothing due: it starts a run, which claims nothing and calls nobody.
    assert dispatch.run(join=forged) == {"claimed": 0}
    assert triggers(redis_url) == []


@pytest.fixture
def small_batches(templates, test_key):
    """The three services in this process, notifications claiming two reminders at a time."""
    from tests.support.inprocess import World

    config = replace(NotificationsConfig.from_env(), dispatch_batch=2)
    built = World(templates, test_key, config={"notifications": config})
    yield built
    built.close()


def test_a_run_whose_first_claim_is_full_calls_for_help_once(small_batches, redis_url):
    world, users = small_batches, Users(small_batches)
    for days in (3, 4):
        book(users, start=now() + timedelta(days=days))
    runtime = world.runtime("notifications")
    with runtime.db.transaction() as session:  # every reminder due now: more than two
        planned = session.execute(update(Reminder).values(
            due_at=now() - timedelta(minutes=1))).rowcount
    assert planned > 2
    runtime.celery.conf.broker_url = redis_url
    redis.Redis.from_url(redis_url).flushdb()
    result = runtime.celery.tasks[handlers.DISPATCH_TASK].run()
    assert result["claimed"] == planned
    # Its first claim was full: one call for help, not one per full claim.
    assert triggers(redis_url) == [{"join": 1}]
