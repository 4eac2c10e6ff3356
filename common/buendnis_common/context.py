"""One ``Context`` for every service: what a use case needs besides its own arguments.

Each service built its own before (referrals a dataclass in its referral module and a second
module to find it, notifications another one, intake none). Now every ``create_app`` calls
``install(app, runtime, config)`` and every view, handler or task asks ``current_context()``:

- ``runtime``: database, outbox, audit, the other services (``buendnis_common.service``);
- ``config``: the service's own settings (``ReferralsConfig``, ``NotificationsConfig``; intake
  has none);
- ``session``: in a request the request's session, which the unit of work commits; a handler
  or task passes its own (``current_context(session=...)``);
- ``principal``: the verified caller of the request (None in a handler or task);
- ``clock``: now, as an aware UTC datetime (tests may give another).

The app's context (no session, no caller) is kept in ``app.extensions[<service name>]``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, g, has_request_context
from sqlalchemy.orm import Session, scoped_session

from .auth import Principal
from .db import utcnow
from .service import ServiceRuntime

_NAME = "buendnis.context"


@dataclass(frozen=True)
class Context:
    runtime: ServiceRuntime
    config: Any = None
    session: Session | scoped_session | None = None
    principal: Principal | None = None
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()


def install(app: Flask, runtime: ServiceRuntime, config: Any = None) -> Context:
    """Make ``runtime`` and ``config`` the app's context (call once in ``create_app``)."""
    context = Context(runtime=runtime, config=config)
    app.extensions[runtime.name] = context
    app.extensions[_NAME] = runtime.name
    return context


def current_context(session: Session | scoped_session | None = None) -> Context:
    """The context of this request (its session and verified caller), or of a handler or task
    with ``session``: the one it runs its unit of work in."""
    context: Context = current_app.extensions[current_app.extensions[_NAME]]
    principal = g.get("principal") if has_request_context() else None
    return dataclasses.replace(
        context, session=session if session is not None else context.runtime.db.session,
        principal=principal)
