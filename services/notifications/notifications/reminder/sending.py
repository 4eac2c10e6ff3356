"""Sending one claimed reminder or notice: to the case worker's inbox, or to the participant by
the channel they chose, in their language, fetched from intake now and kept nowhere."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common import directory
from buendnis_common.db import utcnow
from notifications.answer import service as answers
from notifications.answer.links import answer_link
from notifications.appointment.models import Appointment
from notifications.delivery import contact as contacts
from notifications.delivery import mail
from notifications.delivery.calendar import appointment_calendar
from notifications.delivery.channels import (
    HandOverRefused,
    PermanentFailure,
    TemporaryFailure,
    Unconfirmed,
    mask_email,
    mask_phone,
)
from notifications.delivery.claims import Claim, settle_delivery
from notifications.delivery.models import (
    ACCEPTED,
    CANCELLED,
    FAILED,
    PERMANENT_FAILURE,
    SENDING,
    SENT,
    TEMPORARY_FAILURE,
    UNCONFIRMED,
    Delivery,
)
from notifications.inbox import models as kinds
from notifications.inbox import service as inbox
from notifications.messages.render import language_for, render
from notifications.reminder import models as r
from notifications.reminder.models import Reminder
from notifications.reminder.quiet import send_decision

if TYPE_CHECKING:
    from notifications.delivery.dispatch import Dispatcher

log = logging.getLogger(__name__)

class _NotOurs(Exception):
    """The row was cancelled or taken back while we worked on it: roll back."""


def _entry_data(appointment: Appointment, reminder: Reminder, **extra: Any) -> dict:
    data = {
        "from_org": appointment.from_org, "to_org": appointment.to_org,
        "need_category": appointment.need_category, "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(), "mode": appointment.mode,
    }
    if reminder.offset_seconds is not None:
        data["offset_seconds"] = reminder.offset_seconds
    data.update(extra)
    return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    reminder: Reminder
    appointment: Appointment


def load(dispatcher: Dispatcher, claims: list[Claim]) -> list[Claimed]:
    """The claimed rows and their appointments, in one read for the whole batch (rows
    cancelled since the claim are left out)."""
    if not claims:
        return []
    by_id = {claim.id: claim for claim in claims}
    with dispatcher.db.transaction() as session:
        rows = session.execute(
            select(Reminder, Appointment)
            .join(Appointment, Appointment.id == Reminder.appointment_id)
            .where(Reminder.id.in_(list(by_id)), Reminder.status == SENDING,
                   Reminder.claim_token == claims[0].token)
        ).all()
    return [Claimed(by_id[reminder.id], reminder, appointment)
            for reminder, appointment in rows]


def remind_case_workers(dispatcher: Dispatcher, items: list[Claimed]) -> list[str]:
    """Inbox entries, exactly once: each entry commits together with its row's ``sent``, all
    of the batch in one transaction."""
    if not items:
        return []
    now = utcnow()
    outcomes = []
    with dispatcher.db.transaction() as session:
        for item in items:
            reminder, appointment = item.reminder, item.appointment
            if not dispatcher.reminders.finish(session, item.claim, now=now, status=SENT,
                                               sent_at=now, confirmed=True, channel="inbox"):
                outcomes.append("not_ours")
                continue
            inbox.post(
                session=session, kind=kinds.APPOINTMENT_REMINDER,
                recipient_user=appointment.sender_user_id, recipient_org=appointment.from_org,
                dedupe_key=reminder.idempotency_key, now=now,
                referral_id=appointment.referral_id, appointment_id=appointment.id,
                participant_id=appointment.participant_id, reminder_id=reminder.id,
                data=_entry_data(appointment, reminder),
            )
            outcomes.append("sent")
    return outcomes


def _settle(dispatcher: Dispatcher, claim: Claim, *, status: str, reason: str | None = None,
            **values: Any) -> str:
    now = utcnow()
    with dispatcher.db.transaction() as session:
        dispatcher.reminders.finish(session, claim, now=now, status=status,
                                    cancel_reason=reason, **values)
    return reason or status


def notify_participant(dispatcher: Dispatcher, item: Claimed) -> str:
    """By the channel the participant chose, in their language; the contact is fetched from
    intake now and kept nowhere but as a masked address in the delivery record."""
    claim, reminder, appointment = item.claim, item.reminder, item.appointment
    config = dispatcher.config
    try:
        contact = contacts.fetch(dispatcher.runtime, participant_id=appointment.participant_id,
                                 owner_org=appointment.from_org,
                                 recipient_org=appointment.to_org)
    except TemporaryFailure as failure:
        return _retry(dispatcher, claim, reminder, appointment, failure.code)
    except contacts.NoConsent:
        return _settle(dispatcher, claim, status=CANCELLED, reason=r.NO_CONSENT)
    if contact is None:
        return _settle(dispatcher, claim, status=CANCELLED, reason=r.PARTICIPANT_UNKNOWN)
    channel = contact.channel
    if channel == "none":
        return _settle(dispatcher, claim, status=CANCELLED, reason=r.NO_CHANNEL, channel="none")
    address = contact.email if channel == "email" else contact.phone
    if not address:
        return _settle(dispatcher, claim, status=CANCELLED, reason=r.NO_ADDRESS, channel=channel)
    answer_settings = config.answers
    if channel == "sms" and answer_settings is not None:
        with dispatcher.db.transaction() as session:
            stopped = answers.stopped(session, key=answer_settings.link_key, number=address)
        if stopped:  # the participant sent STOP from this number: no SMS goes to it any more
            return _settle(dispatcher, claim, status=CANCELLED, reason=r.SMS_STOPPED,
                           channel=channel)

    now = utcnow()
    action, detail = send_decision(kind=reminder.kind, channel=channel, now=now,
                                   nominal_due_at=reminder.nominal_due_at,
                                   start=appointment.start, quiet=config.quiet_hours)
    if action == "cancel" and detail == r.TOO_LATE and reminder.last_error:
        # Earlier tries failed and no time is left: that is a failure the case worker hears of.
        return _fail(dispatcher, claim, reminder, appointment, reminder.last_error,
                     outcome=TEMPORARY_FAILURE)
    if action == "cancel":
        return _settle(dispatcher, claim, status=CANCELLED, reason=detail, channel=channel)
    if action == "wait":  # not an attempt: the claim is given back for later
        dispatcher.reminders.release(claim, now=now, due_at=detail, error=None,
                                     attempts=reminder.attempts - 1)
        return "waits"

    language = language_for(contact.language, list(contact.languages))
    organization = directory.organization(appointment.to_org)
    answerable = reminder.kind in (r.REMINDER, r.MOVED) and answer_settings is not None
    link = None
    if answerable and channel == "email":
        link = answer_link(answer_settings, appointment_id=appointment.id, language=language,
                           expires_at=appointment.end)
    rendered = render(reminder.kind, language=language, name=contact.given_name,
                      org_name=organization.name if organization else appointment.to_org,
                      start=appointment.start, mode=appointment.mode, link=link,
                      answerable=answerable and channel == "sms")
    delivery = {
        "reminder_id": reminder.id, "participant_id": appointment.participant_id,
        "channel": channel, "language": language, "idempotency_key": reminder.idempotency_key,
        "attempt": reminder.attempts,
        "masked_address": mask_email(address) if channel == "email" else mask_phone(address),
    }
    handed: dict[str, Any] = {}

    def hand_over() -> bool:
        if not dispatcher.may_hand_over():  # stopping: given back below
            return False
        handed["id"] = dispatcher.reminders.hand_over(claim, now=utcnow(), delivery=delivery,
                                                      channel=channel)
        return handed["id"] is not None

    try:
        if channel == "email":
            cancelled = reminder.kind == r.CANCELLATION
            calendar = appointment_calendar(
                uid=appointment.ical_uid, sequence=appointment.sequence,
                start=appointment.start, end=appointment.end, summary=rendered.summary,
                cancelled=cancelled, organizer=config.smtp.sender, attendee=address,
                language=language, stamp=now,
            )
            message = mail.build(
                key=reminder.idempotency_key, sender=config.smtp.sender, recipient=address,
                subject=rendered.subject, text=rendered.text, html=rendered.html,
                language=language, now=now, calendar=calendar,
                calendar_method="CANCEL" if cancelled else "REQUEST",
            )
            dispatcher.smtp().send(message, recipient=address, hand_over=hand_over)
        else:
            if answerable:
                # A reply from this number may answer this appointment: its keyed hash (never
                # the number) is kept before the SMS leaves, so a quick reply finds it.
                with dispatcher.db.transaction() as session:
                    answers.remember(session, key=answer_settings.link_key, number=address,
                                     appointment=appointment, reminder_id=reminder.id,
                                     language=language, at=utcnow())
            dispatcher.sms().send(to=address, text=rendered.sms, key=reminder.idempotency_key,
                                  hand_over=hand_over)
    except HandOverRefused:
        if not dispatcher.may_hand_over():
            dispatcher.reminders.give_back(claim, now=utcnow())
            return "given_back"
        dispatcher.reminders.release(claim, now=utcnow(), due_at=utcnow(), error=None)
        return "not_ours"
    except TemporaryFailure as failure:
        return _retry(dispatcher, claim, reminder, appointment, failure.code,
                      delivery=delivery, delivery_id=handed.get("id"))
    except PermanentFailure as failure:
        return _fail(dispatcher, claim, reminder, appointment, failure.code,
                     delivery=delivery, delivery_id=handed.get("id"))
    except Unconfirmed as failure:
        if channel == "sms" and config.sms.idempotent:  # the provider de-duplicates
            return _retry(dispatcher, claim, reminder, appointment, failure.code,
                          delivery=delivery, delivery_id=handed.get("id"))
        now = utcnow()
        with dispatcher.db.transaction() as session:
            settle_delivery(session, handed.get("id"), outcome=UNCONFIRMED, error=failure.code)
            if dispatcher.reminders.finish(session, claim, now=now, status=SENT, sent_at=now,
                                           confirmed=False, last_error=failure.code):
                _post_unconfirmed(session, reminder, appointment, now=now, channel=channel)
        return "unconfirmed"
    now = utcnow()
    with dispatcher.db.transaction() as session:
        settle_delivery(session, handed.get("id"), outcome=ACCEPTED)
        dispatcher.reminders.finish(session, claim, now=now, status=SENT, sent_at=now,
                                    confirmed=True, last_error=None)
    return "sent"


def _record(session: Session, *, outcome: str, error: str, delivery: dict | None,
            delivery_id, now: datetime) -> None:
    if delivery_id is not None:
        settle_delivery(session, delivery_id, outcome=outcome, error=error)
    elif delivery is not None:
        session.add(Delivery(outcome=outcome, error=error, at=now, **delivery))


def _retry(dispatcher: Dispatcher, claim: Claim, reminder: Reminder, appointment: Appointment,
           error: str, *, delivery: dict | None = None, delivery_id=None) -> str:
    """Try again later with backoff, unless the tries are used up or the next one would come
    after the appointment has begun: then it has failed."""
    now = utcnow()
    next_at = now + dispatcher.backoff(reminder.attempts)
    if reminder.attempts >= dispatcher.config.max_attempts or next_at >= appointment.start:
        return _fail(dispatcher, claim, reminder, appointment, error, delivery=delivery,
                     delivery_id=delivery_id, outcome=TEMPORARY_FAILURE)
    with dispatcher.db.transaction() as session:
        _record(session, outcome=TEMPORARY_FAILURE, error=error, delivery=delivery,
                delivery_id=delivery_id, now=now)
        dispatcher.reminders.finish(
            session, claim, now=now, status="scheduled", due_at=next_at, claim_token=None,
            claimed_by=None, handed_over_at=None, last_error=error)
    log.info("reminder %s: temporary failure %s, try %d again at %s", reminder.id, error,
             reminder.attempts, next_at.isoformat())
    return "retry"


def _fail(dispatcher: Dispatcher, claim: Claim, reminder: Reminder, appointment: Appointment,
          error: str, *, delivery: dict | None = None, delivery_id=None,
          outcome: str = PERMANENT_FAILURE) -> str:
    """``failed``, and the case worker who made the referral is told in the inbox."""
    now = utcnow()
    try:
        with dispatcher.db.transaction() as session:
            _record(session, outcome=outcome, error=error, delivery=delivery,
                    delivery_id=delivery_id, now=now)
            if not dispatcher.reminders.finish(session, claim, now=now, status=FAILED,
                                               last_error=error):
                raise _NotOurs
            inbox.post(
                session=session, kind=kinds.REMINDER_FAILED,
                recipient_user=appointment.sender_user_id, recipient_org=appointment.from_org,
                dedupe_key=f"failed-{reminder.idempotency_key}", now=now,
                referral_id=appointment.referral_id, appointment_id=appointment.id,
                participant_id=appointment.participant_id, reminder_id=reminder.id,
                data=_entry_data(appointment, reminder, kind=reminder.kind,
                                 channel=(delivery or {}).get("channel"), error=error),
            )
    except _NotOurs:
        return "not_ours"
    log.warning("reminder %s failed after %d tries: %s", reminder.id, reminder.attempts, error)
    return "failed"


def _post_unconfirmed(session: Session, reminder: Reminder, appointment: Appointment, *,
                      now: datetime, channel: str | None) -> None:
    inbox.post(
        session=session, kind=kinds.REMINDER_UNCONFIRMED,
        recipient_user=appointment.sender_user_id, recipient_org=appointment.from_org,
        dedupe_key=f"unconfirmed-{reminder.idempotency_key}", now=now,
        referral_id=appointment.referral_id, appointment_id=appointment.id,
        participant_id=appointment.participant_id, reminder_id=reminder.id,
        data=_entry_data(appointment, reminder, kind=reminder.kind, channel=channel),
    )


def report_unconfirmed(session: Session, reminder: Reminder, *, now: datetime) -> None:
    """The worker died after handing the message over and before the answer: it was not sent
    again, and the case worker hears that it may not have arrived (``delivery.claims``)."""
    if reminder.recipient == r.CASE_WORKER:
        return
    appointment = session.get(Appointment, reminder.appointment_id)
    if appointment is not None:
        _post_unconfirmed(session, reminder, appointment, now=now, channel=reminder.channel)
