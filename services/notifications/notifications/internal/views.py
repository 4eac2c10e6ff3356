"""Endpoints for the other services only: each for the service account of the one service it
serves (``INTERNAL_POLICY`` in ``buendnis_common.policy``). The owner organisation comes from our
own records (the appointments and inbox entries, which carry the referral's sender), never from
the caller."""
from __future__ import annotations

import uuid

from flask import Blueprint
from sqlalchemy import select

from buendnis_common.service import current_runtime
from notifications.appointment.models import Appointment
from notifications.delivery.models import Delivery
from notifications.inbox import service as inbox
from notifications.inbox.sending import describe
from notifications.reminder import service as reminders
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
    session = runtime.db.session
    found = reminders.of_participant(session=session, participant_id=participant_id)
    deliveries = session.scalars(
        select(Delivery).where(Delivery.reminder_id.in_([r.id for r in found]))
        .order_by(Delivery.at)
    ).all() if found else []
    entries = list(session.scalars(
        select(inbox.InboxEntry).where(inbox.InboxEntry.participant_id == participant_id)
        .order_by(inbox.InboxEntry.created_at)))
    owners = set(session.scalars(select(Appointment.from_org).where(
        Appointment.participant_id == participant_id))) | {
        (entry.data or {}).get("from_org") for entry in entries}
    owners.discard(None)
    if owners:
        runtime.audit(session, "participant.export", participant_id=participant_id,
                      actor_org=min(owners))
    session.commit()
    return {
        "reminders": [
            {key: (str(value) if isinstance(value, uuid.UUID) else _iso(value)
                   if hasattr(value, "isoformat") else value)
             for key, value in reminder_view(reminder).items()}
            for reminder in found
        ],
        "deliveries": [
            {"reminder_id": str(d.reminder_id), "channel": d.channel,
             "masked_address": d.masked_address, "language": d.language,
             "attempt": d.attempt, "outcome": d.outcome, "error": d.error, "at": _iso(d.at)}
            for d in deliveries
        ],
        "inbox": [
            {"id": str(e.id), "kind": e.kind, "text": describe(e),
             "recipient_org": e.recipient_org,
             "addressed_to": "user" if e.recipient_user else "organization",
             "created_at": _iso(e.created_at), "data": e.data}
            for e in entries
        ],
    }
