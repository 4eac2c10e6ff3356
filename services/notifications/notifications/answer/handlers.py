"""Both case workers hear of a participant's answer, once referrals has recorded it on the
appointment (``appointment.participant_responded``): the one who made the referral and every
case worker of the receiving organisation, who decides on a request to cancel."""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from buendnis_common.db import utcnow
from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from notifications.inbox import models as kinds
from notifications.inbox import service as inbox
from notifications.inbox.handlers import entry_data

handlers = EventHandlers()

_KINDS = {"confirmed": kinds.ANSWER_CONFIRMED, "cancel_requested": kinds.ANSWER_CANCEL_REQUESTED}


@handlers.on("appointment.participant_responded")
def on_participant_responded(*, session: Session, event: Event) -> None:
    data = event.data
    kind = _KINDS.get(data.get("response") or "")
    if kind is None:
        return
    common = {
        "session": session, "kind": kind, "now": utcnow(),
        "referral_id": uuid.UUID(data["referral_id"]),
        "appointment_id": uuid.UUID(data["appointment_id"]),
        "participant_id": uuid.UUID(data["participant_id"]),
        "data": {**entry_data(event), "channel": data.get("channel"),
                 "response": data.get("response")},
    }
    inbox.post(recipient_user=data.get("sender_user_id"), recipient_org=data["from_org"],
               dedupe_key=f"{event.id}:{kind}:sender", **common)
    inbox.post(recipient_org=data["to_org"], dedupe_key=f"{event.id}:{kind}:receiver", **common)
