"""On SQLite the threads of one process take turns at the database's write lock on a mutex
(``buendnis_common.db``): a waiting thread goes on the moment the other commits or rolls back,
instead of polling in SQLite's busy handler, and no way out of a transaction keeps it."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, text

from buendnis_common.db import Database


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'lock.sqlite3'}")

    # SQLite's busy handler off: a thread that reached BEGIN IMMEDIATE while another held the
    # write lock would fail at once ("database is locked") instead of polling.
    @event.listens_for(database.engine, "connect")
    def _no_busy_handler(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield database
    database.dispose()


def count(db: Database) -> int:
    with db.engine.connect() as connection:
        return connection.execute(text("SELECT n FROM counter")).scalar()


def test_threads_take_turns_without_sqlites_busy_handler(db):
    def add(_n: int) -> None:
        for _ in range(25):
            with db.transaction() as session:
                session.execute(text("UPDATE counter SET n = n + 1"))
                time.sleep(0.001)  # hold it a moment, as a hand-over does

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))
    assert count(db) == 200


def test_a_waiting_thread_goes_on_as_soon_as_the_holder_commits(db):
    held, waited = threading.Event(), []

    def second() -> None:
        held.wait()
        started = time.monotonic()
        with db.transaction() as session:
            session.execute(text("UPDATE counter SET n = n + 1"))
        waited.append(time.monotonic() - started)

    thread = threading.Thread(target=second)
    thread.start()
    with db.transaction() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        held.set()
        time.sleep(0.3)  # the other thread waits for the lock meanwhile
    thread.join(timeout=10)
    assert count(db) == 2
    assert 0.2 < waited[0] < 1.0, waited  # until the commit, not a time-out


@pytest.mark.parametrize("end", ["error", "rollback", "close", "invalidate"])
def test_every_way_out_of_a_transaction_gives_the_lock_back(db, end):
    session = db.Session()
    session.execute(text("UPDATE counter SET n = n + 1"))
    if end == "error":
        with pytest.raises(Exception):  # noqa: B017,PT011 - any database error
            session.execute(text("SELECT no_such_column FROM counter"))
        session.rollback()
    elif end == "rollback":
        session.rollback()
    elif end == "close":
        session.close()
    else:
        session.connection().invalidate()
        session.close()
    started = time.monotonic()
    with db.transaction() as other:
        other.execute(text("UPDATE counter SET n = n + 10"))
    assert time.monotonic() - started < 1.0
    assert count(db) == 10
