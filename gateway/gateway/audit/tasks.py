"""The audit trail's consumer: each service's ``audit.recorded`` event becomes one entry."""
from __future__ import annotations

from sqlalchemy.orm import Session

from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from gateway.audit import chain

handlers = EventHandlers()


@handlers.on("audit.recorded")
def on_audit_recorded(*, session: Session, event: Event) -> None:
    chain.append(session, event_id=event.id, source=event.source, fields=event.data)
