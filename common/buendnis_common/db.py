"""One database per service: engine, sessions, and the SQLite settings that make it behave.

On SQLite every transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout
instead of failing when a read transaction tries to upgrade, which is what lets a claim on SQLite
(outbox relay, reminder dispatch) be as exclusive as ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, Integer, create_engine, event
from sqlalchemy.engine import Engine, make_url
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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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
