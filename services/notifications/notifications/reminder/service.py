"""Reminder use cases: plan them when an appointment is booked, replace them when it moves,
cancel them when it is cancelled or the participant erased. Data access never commits."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.errors import NotFound
from notifications.appointment.models import Appointment
from notifications.config import NotificationsConfig
from notifications.delivery.models import CANCELLED, SCHEDULED, SENDING
from notifications.reminder.models import (
    CANCELLATION,
    CASE_WORKER,
    MOVED,
    PARTICIPANT,
    PAST_AT_BOOKING,
    REMINDER,
    Reminder,
)
from notifications.reminder.quiet import sms_due


def _key(appointment: Appointment, kind: str, recipient: str, offset: timedelta | None) -> str:
    """Unique per message: the appointment, its version (a move makes new reminders), what,
    for whom and at which offset."""
    seconds = int(offset.total_seconds()) if offset is not None else 0
    return f"{appointment.id.hex}-{appointment.sequence}-{kind[0]}{recipient[0]}{seconds}"


def plan(*, session: Session, config: NotificationsConfig, appointment: Appointment,
         now: datetime) -> list[Reminder]:
    """One reminder per offset and recipient. One whose time has already passed is recorded as
    cancelled (``past_at_booking``): a reminder is never sent late. The participant's may be due
    earlier than its offset when the offset falls in the SMS quiet hours; if the participant
    chose e-mail it then waits for its offset (decided at send time, when the channel is known)."""
    reminders = []
    for offset in config.offsets:
        nominal = appointment.start - offset
        for recipient in (PARTICIPANT, CASE_WORKER):
            due = nominal
            if recipient == PARTICIPANT:
                due = sms_due(nominal, quiet=config.quiet_hours, lead=config.quiet_hours_lead)
            reminder = Reminder(
                id=uuid.uuid4(),
                appointment_id=appointment.id,
                participant_id=appointment.participant_id,
                kind=REMINDER,
                recipient=recipient,
                offset_seconds=int(offset.total_seconds()),
                nominal_due_at=nominal,
                due_at=max(due, now) if nominal > now else nominal,
                sequence=appointment.sequence,
                channel="inbox" if recipient == CASE_WORKER else None,
                idempotency_key=_key(appointment, REMINDER, recipient, offset),
                status=SCHEDULED if nominal > now else CANCELLED,
                cancel_reason=None if nominal > now else PAST_AT_BOOKING,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            session.add(reminder)
            reminders.append(reminder)
    return reminders


def notify_participant(*, session: Session, appointment: Appointment, kind: str,
                       now: datetime) -> Reminder:
    """A notice to the participant, due at once: the appointment moved or was cancelled."""
    assert kind in (MOVED, CANCELLATION)
    notice = Reminder(
        id=uuid.uuid4(), appointment_id=appointment.id,
        participant_id=appointment.participant_id, kind=kind, recipient=PARTICIPANT,
        offset_seconds=None, nominal_due_at=now, due_at=now, sequence=appointment.sequence,
        idempotency_key=_key(appointment, kind, PARTICIPANT, None), status=SCHEDULED,
        attempts=0, created_at=now, updated_at=now,
    )
    session.add(notice)
    return notice


def cancel_pending(*, session: Session, reason: str, now: datetime,
                   appointment_id: uuid.UUID | None = None,
                   participant_id: uuid.UUID | None = None,
                   kinds: tuple[str, ...] | None = None) -> int:
    """Cancel what has not gone out: scheduled rows, and rows being sent that have not been
    handed over yet (their worker's hand-over then fails and it sends nothing)."""
    conditions = [
        or_(Reminder.status == SCHEDULED,
            and_(Reminder.status == SENDING, Reminder.handed_over_at.is_(None))),
    ]
    if appointment_id is not None:
        conditions.append(Reminder.appointment_id == appointment_id)
    if participant_id is not None:
        conditions.append(Reminder.participant_id == participant_id)
    if kinds is not None:
        conditions.append(Reminder.kind.in_(kinds))
    result = session.execute(
        update(Reminder).where(*conditions)
        .values(status=CANCELLED, cancel_reason=reason, lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def of_appointment(*, session: Session, principal: Principal,
                   appointment_id: uuid.UUID) -> tuple[Appointment, list[Reminder]]:
    """The reminders of an appointment, for the referral's two organisations only (404 for
    everyone else, as for an appointment that does not exist)."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or principal.org_alias not in (appointment.from_org,
                                                           appointment.to_org):
        raise NotFound("appointment.not_found")
    reminders = session.scalars(
        select(Reminder).where(Reminder.appointment_id == appointment_id)
        .order_by(Reminder.created_at, Reminder.nominal_due_at, Reminder.recipient.desc())
    ).all()
    return appointment, list(reminders)


def of_participant(*, session: Session, participant_id: uuid.UUID) -> list[Reminder]:
    """The reminders of the participant's appointments (all on referrals their owner sent)."""
    return list(session.scalars(
        select(Reminder).join(Appointment, Appointment.id == Reminder.appointment_id)
        .where(Reminder.participant_id == participant_id)
        .order_by(Reminder.created_at, Reminder.nominal_due_at)
    ))
