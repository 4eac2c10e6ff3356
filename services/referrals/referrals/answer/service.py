"""A participant's answer to a reminder, recorded on the appointment.

Two ways in: the SMS reply, which the notifications service matches to the appointment and
passes on as ``answer.received``, and the link of an e-mail reminder (``views``). Either way
the answer is a code on the appointment (``participant_response``, ``responded_at``) and an
event, ``appointment.participant_responded``, from which both case workers hear of it. A request
to cancel cancels nothing: the receiving organisation decides and cancels the appointment
itself, which frees the slot and tells the participant.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from buendnis_common.answers import RESPONSES
from buendnis_common.events import Event
from buendnis_common.service import ServiceRuntime
from referrals.appointment.models import BOOKED, AnswerLinkUse, Appointment
from referrals.appointment.service import _fields
from referrals.referral.models import Referral

log = logging.getLogger(__name__)


def is_open(appointment: Appointment, now: datetime) -> bool:
    """Answers are taken for a booked appointment until it ends."""
    return appointment.status == BOOKED and now < appointment.end


def record(runtime: ServiceRuntime, session: Session, *, appointment: Appointment,
           response: str, channel: str, at: datetime) -> bool:
    """Record the answer and tell both sides; False (nothing changes) when the appointment is
    no longer open to answers."""
    assert response in RESPONSES, response
    if not is_open(appointment, at):
        return False
    referral = session.get(Referral, appointment.referral_id)
    if referral is None:
        return False
    appointment.participant_response = response
    appointment.responded_at = at
    session.flush()
    runtime.audit(session, f"appointment.answer_{channel}", owner_org=referral.from_org,
                  participant_id=referral.participant_id, record_id=appointment.id)
    runtime.emit(session, "appointment.participant_responded", **_fields(referral, appointment),
                 response=response, responded_at=at, channel=channel)
    return True


def answer_by_link(runtime: ServiceRuntime, session: Session, *, appointment: Appointment,
                   response: str, at: datetime) -> bool:
    """The answer given through an e-mail reminder's link, each answer once: False (nothing
    recorded) when the link gave this answer before — a replay."""
    session.refresh(appointment, with_for_update=True)
    try:
        with session.begin_nested():
            session.add(AnswerLinkUse(appointment_id=appointment.id, response=response,
                                      used_at=at))
            session.flush()
    except IntegrityError:
        return False
    record(runtime, session, appointment=appointment, response=response, channel="link", at=at)
    return True


def on_answer_received(runtime: ServiceRuntime, *, session: Session, event: Event) -> None:
    """An SMS reply the notifications service matched to one of our appointments."""
    data = event.data
    response = data.get("response")
    if response not in RESPONSES:
        return
    appointment = session.get(Appointment, uuid.UUID(data["appointment_id"]),
                              with_for_update=True)
    if appointment is None:
        return
    at = datetime.fromisoformat(data["responded_at"])
    if not record(runtime, session, appointment=appointment, response=response,
                  channel=data.get("channel") or "sms", at=at):
        log.info("an answer came for an appointment that no longer takes answers")
