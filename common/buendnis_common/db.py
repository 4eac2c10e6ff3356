"""One database per service: engine, sessions, and the SQLite settings that make it behave.

On SQLite every transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout
instead of failing when a read transaction tries to upgrade, which is what lets a claim on SQLite
(outbox relay, reminder dispatch) be as exclusive as ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.

Within one process the threads queue for that write lock on a mutex of the engine first
(``_WriteLock``): SQLite's own busy handler polls with sleeps of up to 100 ms, so eight sending
threads that each commit once per e-mail left the database idle while they slept (a third of a
notifications worker's time in a burst of reminders). Between processes the busy timeout still
decides.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, Integer, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

# An auto-incrementing key on both engines (SQLite only auto-increments INTEGER PRIMARY KEY).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UtcDateTime(TypeDecorator):
    """Timezone-aware datetimes in UTC on every engine (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


BUSY_TIMEOUT_SECONDS = 15


class _WriteLock:
    """SQLite's write lock as a mutex of this process: taken before ``BEGIN IMMEDIATE``,
    given back once that transaction has committed or rolled back (or its connection is
    closed or invalidated). A thread waiting for it wakes the moment it is free, instead of
    polling in SQLite's busy handler. Never a deadlock: after the busy timeout a waiter goes on
    without it and SQLite's own lock decides, as before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None  # id() of the DBAPI connection holding it

    @staticmethod
    def _key(connection) -> int:
        # The DBAPI connection itself, also when it comes wrapped in the pool's proxy.
        return id(getattr(connection, "dbapi_connection", connection))

    def take(self, dbapi_connection) -> None:
        if self._lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            self._holder = self._key(dbapi_connection)

    def give_back(self, dbapi_connection) -> None:
        if dbapi_connection is not None and self._holder == self._key(dbapi_connection):
            self._holder = None
            self._lock.release()


def _configure_sqlite(engine: Engine) -> None:
    write_lock = _WriteLock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        dbapi_connection = connection.connection.dbapi_connection
        write_lock.take(dbapi_connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            write_lock.give_back(dbapi_connection)
            raise

    dialect = engine.dialect

    def after(method):
        def run(dbapi_connection):
            try:
                method(dbapi_connection)
            finally:
                write_lock.give_back(dbapi_connection)
        return run

    # This engine's own dialect: COMMIT and ROLLBACK give the mutex back once they are done.
    dialect.do_commit = after(dialect.do_commit)
    dialect.do_rollback = after(dialect.do_rollback)
    for name in ("checkin", "close", "invalidate", "soft_invalidate"):
        event.listen(engine, name, lambda dbapi_connection, *_args:
                     write_lock.give_back(dbapi_connection))


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    # hide_parameters: a failed statement's error (and so any log of it) carries no values.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         hide_parameters=True)


def wait_seconds() -> float:
    """How long a process waits for its database at start (``BUENDNIS_WAIT_SECONDS``, 120)."""
    return float(os.environ.get("BUENDNIS_WAIT_SECONDS", "120"))


def connect_patiently(engine: Engine, seconds: float | None = None, *,
                      on_wait: Callable[[OperationalError], None] | None = None) -> Connection:
    """A connection from ``engine``; a server database that cannot be reached yet (the server
    starting, its name not resolving for a moment) is asked again every 2 s for up to ``seconds``
    (``BUENDNIS_WAIT_SECONDS``), then the last error is raised. Only the connecting is retried:
    no statement has run, so nothing is done twice. SQLite is not retried: a file that cannot be
    opened does not get better by waiting."""
    deadline = time.monotonic() + (wait_seconds() if seconds is None else seconds)
    while True:
        try:
            return engine.connect()
        except OperationalError as exc:
            if engine.dialect.name == "sqlite" or time.monotonic() >= deadline:
                raise
            if on_wait is not None:
                on_wait(exc)
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


class Database:
    """Engine and sessions of one service. ``session`` is the request-scoped one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.session = scoped_session(self.Session)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A fresh session in one unit of work (``buendnis_common.unit_of_work``): committed on
        success, then its after-commit hooks run; rolled back on error."""
        from .unit_of_work import transaction

        with transaction(self) as session:
            yield session

    def remove(self, _exc: BaseException | None = None) -> None:
        self.session.remove()

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()
