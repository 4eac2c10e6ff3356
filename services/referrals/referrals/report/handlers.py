"""Intake's ``need.changed`` events, folded into the reporting store's open-need counts."""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from referrals.report import service

handlers = EventHandlers()


@handlers.on("need.changed")
def on_need_changed(*, session: Session, event: Event) -> None:
    # The consumer records the event id in this same transaction: each event counts once.
    alliance = event.data.get("alliance")
    if not alliance:
        return
    service.count_need_change(
        session=session,
        alliance=alliance,
        category=event.data["category"],
        status=event.data.get("status"),
        previous_status=event.data.get("previous_status"),
        participant_id=(uuid.UUID(str(event.data["participant_id"]))
                        if event.data.get("participant_id") else None),
    )
