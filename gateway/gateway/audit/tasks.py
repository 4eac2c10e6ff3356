"""The audit trail's consumer: each service's ``audit.recorded`` event becomes one entry."""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from gateway.audit import chain

handlers = EventHandlers()


@handlers.on("audit.recorded")
def on_audit_recorded(*, session: Session, event: Event) -> None:
    """One entry, or one per participant of a list read (``participant_ids``)."""
    many = event.data.get("participant_ids")
    if many is None:
        chain.append(session, event_id=event.id, source=event.source, fields=event.data)
        return
    for index, participant_id in enumerate(many):
        chain.append(session, event_id=uuid.uuid5(event.id, str(index)), source=event.source,
                     fields={**event.data, "participant_id": participant_id})
