"""Endpoints for the other services only: each for the service account of the one service it
serves (``INTERNAL_POLICY`` in ``buendnis_common.policy``). The owner organisation comes from our
own records (the appointments and inbox entries, which carry the referral's sender), never from
the caller."""
from __future__ import annotations

import uuid

from flask import Blueprint

from buendnis_common.service import current_runtime
from notifications.inbox.sending import describe
from notifications.internal import export as held_here
from notifications.reminder.views import view as reminder_view

blp = Blueprint("internal", __name__, url_prefix="/internal/participants")


def _iso(value):
    return value.isoformat() if value is not None else None


@blp.get("/<uuid:participant_id>/export")
def export(participant_id: uuid.UUID):
    """What notifications holds about the participant, for intake's Art. 15 export: the
    reminders of their appointments, every delivery attempt (channel, masked address, language,
    outcome — the address itself is never kept) and the inbox entries about them."""
    runtime = current_runtime()
    held = held_here.gather(runtime=runtime, session=runtime.db.session,
                         participant_id=participant_id)
    return {
        "reminders": [
            {key: (str(value) if isinstance(value, uuid.UUID) else _iso(value)
                   if hasattr(value, "isoformat") else value)
             for key, value in reminder_view(reminder).items()}
            for reminder in held.reminders
        ],
        "deliveries": [
            {"reminder_id": str(d.reminder_id), "channel": d.channel,
             "masked_address": d.masked_address, "language": d.language,
             "attempt": d.attempt, "outcome": d.outcome, "error": d.error, "at": _iso(d.at)}
            for d in held.deliveries
        ],
        "inbox": [
            {"id": str(e.id), "kind": e.kind, "text": describe(e),
             "recipient_org": e.recipient_org,
             "addressed_to": "user" if e.recipient_user else "organization",
             "created_at": _iso(e.created_at), "data": e.data}
            for e in held.inbox
        ],
    }
