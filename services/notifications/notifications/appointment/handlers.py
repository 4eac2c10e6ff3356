"""Handlers of referrals' appointment events and intake's erasure: the reminders follow the
appointment, and the case worker who made the referral hears of every change."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from buendnis_common.context import current_context
from buendnis_common.db import utcnow
from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from notifications.answer import service as answers
from notifications.appointment import service as appointments
from notifications.appointment.models import BOOKED
from notifications.delivery.models import Delivery
from notifications.inbox import models as kinds
from notifications.inbox.handlers import to_sender
from notifications.reminder import models as reminder_models
from notifications.reminder import pacing
from notifications.reminder import service as reminders

log = logging.getLogger(__name__)

handlers = EventHandlers()


@handlers.on("appointment.booked")
def on_appointment_booked(*, session: Session, event: Event) -> None:
    now = utcnow()
    appointment = appointments.apply(session=session, event=event, now=now)
    if appointment is None:
        return
    to_sender(session=session, event=event, kind=kinds.APPOINTMENT_BOOKED,
              appointment_id=appointment.id)
    if appointment.status != BOOKED or appointments.is_erased(
            session=session, participant_id=appointment.participant_id):
        return
    planned = reminders.plan(session=session, config=current_context().config,
                             appointment=appointment, now=now)
    log.info("appointment booked: %d reminder(s) planned", len(planned))


@handlers.on("appointment.rescheduled")
def on_appointment_rescheduled(*, session: Session, event: Event) -> None:
    """Pending reminders (and an unsent earlier notice of a move) give way to new ones at the
    new time; the participant is told of the move, at most once per interval (``pacing``)."""
    now = utcnow()
    appointment = appointments.apply(session=session, event=event, now=now)
    if appointment is None:
        return
    reminders.cancel_pending(session=session, appointment_id=appointment.id, now=now,
                             reason=reminder_models.APPOINTMENT_MOVED,
                             kinds=(reminder_models.REMINDER, reminder_models.MOVED))
    to_sender(session=session, event=event, kind=kinds.APPOINTMENT_MOVED,
              appointment_id=appointment.id)
    if appointment.status != BOOKED or appointments.is_erased(
            session=session, participant_id=appointment.participant_id):
        return
    config = current_context().config
    planned = reminders.plan(session=session, config=config, appointment=appointment, now=now)
    if appointment.start > now:
        planned.append(reminders.notify_participant(
            session=session, appointment=appointment, kind=reminder_models.MOVED, now=now))
    session.flush()
    pacing.space_out(session=session, appointment_id=appointment.id, new=planned,
                     interval=config.change_notice_interval)


@handlers.on("appointment.cancelled")
def on_appointment_cancelled(*, session: Session, event: Event) -> None:
    now = utcnow()
    appointment = appointments.apply(session=session, event=event, now=now)
    if appointment is None:
        return
    reminders.cancel_pending(session=session, appointment_id=appointment.id, now=now,
                             reason=reminder_models.APPOINTMENT_CANCELLED)
    to_sender(session=session, event=event, kind=kinds.APPOINTMENT_CANCELLED,
              appointment_id=appointment.id)
    if appointment.start > now and not appointments.is_erased(
            session=session, participant_id=appointment.participant_id):
        reminders.notify_participant(session=session, appointment=appointment,
                                     kind=reminder_models.CANCELLATION, now=now)


@handlers.on("appointment.attended")
def on_appointment_attended(*, session: Session, event: Event) -> None:
    now = utcnow()
    appointment = appointments.apply(session=session, event=event, now=now)
    if appointment is not None:
        reminders.cancel_pending(session=session, appointment_id=appointment.id, now=now,
                                 reason=reminder_models.APPOINTMENT_ATTENDED)


@handlers.on("participant.erased")
def on_participant_erased(*, session: Session, event: Event) -> None:
    """Nothing more goes to the person, and the masked addresses of past deliveries go."""
    now = utcnow()
    participant_id = uuid.UUID(event.data["participant_id"])
    appointments.record_erasure(session=session, participant_id=participant_id,
                                owner_org=event.data["owner_org"], at=event.occurred_at)
    answers.forget_participant(session, participant_id)  # the hashes of their number
    cancelled = reminders.cancel_pending(session=session, participant_id=participant_id,
                                         now=now, reason=reminder_models.PARTICIPANT_ERASED)
    session.execute(
        update(Delivery).where(Delivery.participant_id == participant_id)
        .values(masked_address=None)
        .execution_options(synchronize_session=False)
    )
    log.info("participant erased: %d pending reminder(s) cancelled", cancelled)
