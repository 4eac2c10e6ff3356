"""What notifications holds about one participant, for intake's Art. 15 export, read and
audited here (the request's unit of work commits); the route only serialises it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common.service import ServiceRuntime
from notifications.appointment.models import Appointment
from notifications.delivery.models import Delivery
from notifications.inbox.models import InboxEntry
from notifications.reminder import service as reminders
from notifications.reminder.models import Reminder


@dataclass(frozen=True)
class Held:
    reminders: list[Reminder]
    deliveries: list[Delivery]
    inbox: list[InboxEntry]


def gather(*, runtime: ServiceRuntime, session: Session, participant_id: uuid.UUID) -> Held:
    """The reminders of the participant's appointments, every delivery attempt and the inbox
    entries about them; the read is audited for the owner (when we know one)."""
    found = reminders.of_participant(session=session, participant_id=participant_id)
    deliveries = session.scalars(
        select(Delivery).where(Delivery.reminder_id.in_([r.id for r in found]))
        .order_by(Delivery.at)
    ).all() if found else []
    entries = list(session.scalars(
        select(InboxEntry).where(InboxEntry.participant_id == participant_id)
        .order_by(InboxEntry.created_at)))
    owners = set(session.scalars(select(Appointment.from_org).where(
        Appointment.participant_id == participant_id))) | {
        (entry.data or {}).get("from_org") for entry in entries}
    owners.discard(None)
    if owners:
        runtime.audit(session, "participant.export", participant_id=participant_id,
                      actor_org=min(owners))
    return Held(reminders=found, deliveries=list(deliveries), inbox=entries)
