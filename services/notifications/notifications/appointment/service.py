"""Keeping notifications' copy of an appointment in step with referrals' events."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from buendnis_common.events import Event
from notifications.appointment.models import Appointment, ParticipantErasure

# Events that change the appointment as a calendar knows it (its SEQUENCE grows).
_CHANGES = ("appointment.rescheduled", "appointment.cancelled")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def apply(*, session: Session, event: Event, now: datetime) -> Appointment | None:
    """Apply an appointment event; ``None`` when the copy already reflects a later event
    (events can arrive out of order), so that an old event never undoes a newer one."""
    data = event.data
    appointment_id = uuid.UUID(data["appointment_id"])
    appointment = session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        appointment = Appointment(id=appointment_id, sequence=0, created_at=now)
        try:
            with session.begin_nested():
                _fill(appointment, data)
                appointment.last_event_at = event.occurred_at
                appointment.updated_at = now
                session.add(appointment)
                session.flush()
        except IntegrityError:  # another worker inserted it at the same moment
            appointment = session.get(Appointment, appointment_id, with_for_update=True,
                                      populate_existing=True)
        else:
            if event.type in _CHANGES:
                appointment.sequence = 1
            return appointment
    if appointment.last_event_at >= event.occurred_at:
        return None
    _fill(appointment, data)
    if event.type in _CHANGES:
        appointment.sequence += 1
    appointment.last_event_at = event.occurred_at
    appointment.updated_at = now
    return appointment


def _fill(appointment: Appointment, data: dict) -> None:
    appointment.referral_id = uuid.UUID(data["referral_id"])
    appointment.participant_id = uuid.UUID(data["participant_id"])
    appointment.from_org = data["from_org"]
    appointment.to_org = data["to_org"]
    appointment.alliance = data.get("alliance")
    appointment.need_category = data.get("need_category")
    appointment.sender_user_id = data.get("sender_user_id")
    appointment.start = _parse(data["start"])
    appointment.end = _parse(data["end"])
    appointment.mode = data.get("mode")
    appointment.status = data.get("status") or "booked"


def is_erased(*, session: Session, participant_id: uuid.UUID) -> bool:
    return session.get(ParticipantErasure, participant_id) is not None


def record_erasure(*, session: Session, participant_id: uuid.UUID, owner_org: str,
                   at: datetime) -> None:
    if session.get(ParticipantErasure, participant_id) is None:
        session.add(ParticipantErasure(participant_id=participant_id, owner_org=owner_org,
                                       erased_at=at))
