"""One transaction boundary: a unit of work per request, per event handled and per task.

Views only parse, call a service function and serialise; service functions write through the
session and never commit. The unit around them commits once at the end — the change, its
outbox events and its audit entries together — or rolls all of it back:

- **A request** (``install``, done by ``ServiceRuntime.bind``): committed when the view returned
  a success (below 400); rolled back when it raised or answered 4xx/5xx. A failed commit gets
  a proper answer: a lost database the usual 503 (``errors``), a broken constraint 409.
- **An event or a task** (``transaction``, which ``Database.transaction`` is): committed when the
  block ends, rolled back when it raises. The consumer records the event's id inside the same
  unit as its handler's work (``events.Consumer``), so a failed handler leaves neither.

``after_commit(fn)`` runs ``fn`` once the unit's data is committed (not at all if it is rolled
back): work that must see committed data or must not hold the transaction open, such as a
Celery task about the new row or a second question to another service. A hook that raises
makes the request's answer its error; what was committed stays committed, so such a hook
undoes its own work. Each hook opens its own unit when it writes.

``checkpoint()`` commits what the unit holds so far and goes on in a new transaction. A use case
calls it before it waits on another service in the middle of a request: on SQLite every
transaction holds the database's write lock (``db``), which must not wait on another process.

Superset's commands own their transaction the same way (``superset.utils.decorators.transaction``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from flask import Flask, g, has_app_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from .errors import Conflict

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

Hook = Callable[[], None]

_current: ContextVar[UnitOfWork | None] = ContextVar("buendnis_unit_of_work", default=None)
_REQUEST_KEY = "_buendnis_unit_of_work"


class UnitOfWork:
    """The session of one request, event or task, and what is to run after its commit."""

    def __init__(self, session: Session | scoped_session) -> None:
        self.session = session
        self._after_commit: list[Hook] = []

    def _untouched(self) -> bool:
        """A request that never used its scoped session (the gateway's proxying) has none."""
        return isinstance(self.session, scoped_session) and not self.session.registry.has()

    def after_commit(self, hook: Hook) -> None:
        self._after_commit.append(hook)

    def checkpoint(self) -> None:
        """Commit what is done so far; the unit goes on (hooks still wait for its end)."""
        self.session.commit()

    def commit(self) -> None:
        """Commit, then run the hooks in the order they were added."""
        if self._untouched() and not self._after_commit:
            return
        try:
            self.session.commit()
        except Exception:
            self.rollback()
            raise
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            hook()

    def rollback(self) -> None:
        self._after_commit.clear()
        if not self._untouched():
            self.session.rollback()


def current() -> UnitOfWork:
    """The innermost unit of work: a handler's or task's, else the request's."""
    work = _current.get()
    if work is None and has_app_context():
        work = g.get(_REQUEST_KEY)
    if work is None:
        raise RuntimeError("no unit of work: call this inside a request, a handler or a task")
    return work


def after_commit(hook: Hook) -> None:
    current().after_commit(hook)


def checkpoint() -> None:
    current().checkpoint()


@contextmanager
def transaction(db: Database) -> Iterator[Session]:
    """A fresh session in a unit of work: committed (then its hooks run) when the block ends,
    rolled back when it raises."""
    with db.Session() as session:
        work = UnitOfWork(session)
        token = _current.set(work)
        try:
            try:
                yield session
            except BaseException:
                work.rollback()
                raise
            work.commit()
        finally:
            _current.reset(token)


def install(app: Flask, db: Database) -> None:
    """Give every request of ``app`` a unit of work over ``db``'s request-scoped session."""
    if app.extensions.get("buendnis_unit_of_work") is db:
        return
    app.extensions["buendnis_unit_of_work"] = db
    dispatch = app.dispatch_request

    def begin() -> None:
        g.setdefault(_REQUEST_KEY, UnitOfWork(db.session))

    def dispatch_request():
        begin()
        work: UnitOfWork = g.get(_REQUEST_KEY)
        try:
            try:
                rv = dispatch()
            except BaseException:
                work.rollback()
                raise
            response = app.make_response(rv)
            if response.status_code >= 400:
                work.rollback()
                return response
            work.commit()
        except IntegrityError:  # at a flush in the view or at the commit: rolled back
            log.warning("a write was refused by a constraint; nothing was saved")
            raise Conflict("service.write_conflict") from None
        return response

    # Before every other hook: a before_request that writes (notifications remembers the
    # caller) writes in the request's unit.
    app.before_request_funcs.setdefault(None, []).insert(0, begin)
    app.dispatch_request = dispatch_request
