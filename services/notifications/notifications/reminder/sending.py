"""Sending claimed reminders and notices: to the case worker's inbox, or to the participant by
the channel they chose, in their language, fetched from intake now and kept nowhere.

A dispatcher's batch goes in two halves. ``prepare_participants`` asks intake for the contacts
of the whole batch in one request (consent decided per person there, at that moment), checks
STOP in one query, and settles what is not to be sent now; ``send_emails`` then sends a group of
e-mails over one SMTP connection, ``send_sms`` one SMS at the provider's pace."""
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
    DeliveryError,
    HandOverRefused,
    PermanentFailure,
    SmsSender,
    SmtpSender,
    TemporaryFailure,
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
    of the batch in one transaction of a few statements (``finish_many``, ``post_many``)."""
    if not items:
        return []
    now = utcnow()
    with dispatcher.db.transaction() as session:
        ours = dispatcher.reminders.finish_many(
            session, [item.claim for item in items], now=now, status=SENT, sent_at=now,
            confirmed=True, channel="inbox")
        inbox.post_many(session=session, now=now, entries=[
            dict(kind=kinds.APPOINTMENT_REMINDER, recipient_user=item.appointment.sender_user_id,
                 recipient_org=item.appointment.from_org,
                 dedupe_key=item.reminder.idempotency_key,
                 referral_id=item.appointment.referral_id, appointment_id=item.appointment.id,
                 participant_id=item.appointment.participant_id, reminder_id=item.reminder.id,
                 data=_entry_data(item.appointment, item.reminder))
            for item in items if item.claim.id in ours
        ])
    return ["sent" if item.claim.id in ours else "not_ours" for item in items]


def _settle(dispatcher: Dispatcher, claim: Claim, *, status: str, reason: str | None = None,
            **values: Any) -> str:
    now = utcnow()
    with dispatcher.db.transaction() as session:
        dispatcher.reminders.finish(session, claim, now=now, status=status,
                                    cancel_reason=reason, **values)
    return reason or status


@dataclass
class Prepared:
    """A participant's message, rendered and ready to leave; nothing handed over yet."""

    item: Claimed
    channel: str
    address: str
    language: str
    delivery: dict
    message: bytes | None = None  # e-mail, as it goes over SMTP
    text: str | None = None  # SMS
    answerable: bool = False

    @property
    def claim(self) -> Claim:
        return self.item.claim


def prepare_participants(dispatcher: Dispatcher, items: list[Claimed],
                         ) -> tuple[list[tuple[Claimed, str]], list[Prepared]]:
    """The first half of sending a batch to participants: their contacts from intake in one
    request per ``contact.BATCH`` (consent checked there, per person, now), the STOP list in one
    query, then per reminder the decision (quiet hours, too late, pacing's due time). What is
    not sent is settled here (cancelled, given back for later, retried); the rest comes back
    rendered, to be handed over by ``send_emails`` and ``send_sms``."""
    if not items:
        return [], []
    wanted = {item: (item.appointment.participant_id, item.appointment.from_org,
                     item.appointment.to_org) for item in items}
    try:
        found = contacts.fetch_many(dispatcher.runtime, list(dict.fromkeys(wanted.values())))
    except TemporaryFailure as failure:
        return [(item, _retry(dispatcher, item.claim, item.reminder, item.appointment,
                              failure.code)) for item in items], []
    answer_settings = dispatcher.config.answers
    stopped: set[str] = set()
    numbers = {contact.phone for contact in found.values()
               if isinstance(contact, contacts.Contact) and contact.channel == "sms"
               and contact.phone}
    if numbers and answer_settings is not None:
        with dispatcher.db.transaction() as session:
            stopped = answers.stopped_numbers(session, key=answer_settings.link_key,
                                              numbers=numbers)
    settled: list[tuple[Claimed, str]] = []
    ready: list[Prepared] = []
    for item in items:
        outcome = _prepare(dispatcher, item, found[wanted[item]], stopped)
        if isinstance(outcome, Prepared):
            ready.append(outcome)
        else:
            settled.append((item, outcome))
    return settled, ready


def _prepare(dispatcher: Dispatcher, item: Claimed, contact, stopped: set[str],
             ) -> str | Prepared:
    """By the channel the participant chose, in their language; the contact was fetched from
    intake now and is kept nowhere but as a masked address in the delivery record."""
    claim, reminder, appointment = item.claim, item.reminder, item.appointment
    config = dispatcher.config
    if isinstance(contact, contacts.NoConsent):
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
    if channel == "sms" and address in stopped:
        # The participant sent STOP from this number: no SMS goes to it any more.
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
    prepared = Prepared(item, channel, address, language, delivery, answerable=answerable)
    if channel == "sms":
        prepared.text = rendered.sms
        return prepared
    cancelled = reminder.kind == r.CANCELLATION
    calendar = appointment_calendar(
        uid=appointment.ical_uid, sequence=appointment.sequence,
        start=appointment.start, end=appointment.end, summary=rendered.summary,
        cancelled=cancelled, organizer=config.smtp.sender, attendee=address,
        language=language, stamp=now,
    )
    prepared.message = mail.wire(
        key=reminder.idempotency_key, sender=config.smtp.sender, recipient=address,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        language=language, now=now, calendar=calendar,
        calendar_method="CANCEL" if cancelled else "REQUEST",
    )
    return prepared


def _sent(dispatcher: Dispatcher, session: Session, accepted: tuple[Prepared, Any, datetime],
          ) -> None:
    """The server said 250: ``sent`` and confirmed, in ``session``'s transaction."""
    prepared, delivery_id, at = accepted
    settle_delivery(session, delivery_id, outcome=ACCEPTED)
    dispatcher.reminders.finish(session, prepared.claim, now=at, status=SENT, sent_at=at,
                                confirmed=True, last_error=None)


def send_emails(dispatcher: Dispatcher, batch: list[Prepared]) -> list[str]:
    """E-mails to participants over one SMTP connection, one after another.

    Each message is handed over (``Claims.hand_over``) after the server's 354 and before its
    content leaves, as always. The message before it, answered 250, is settled as ``sent`` in
    that same transaction: one commit per message instead of two, and still at most one
    message per connection whose fate a crash leaves uncertain (handed over, answer not
    recorded)."""
    outcomes: list[str] = []
    sender = SmtpSender(dispatcher.config.smtp)
    accepted: tuple[Prepared, Any, datetime] | None = None

    def settle_accepted() -> None:
        nonlocal accepted
        if accepted is not None:
            with dispatcher.db.transaction() as session:
                _sent(dispatcher, session, accepted)
            accepted = None

    try:
        for prepared in batch:
            if not dispatcher.may_hand_over():
                settle_accepted()
                dispatcher.reminders.give_back(prepared.claim, now=utcnow())
                outcomes.append("given_back")
                continue
            handed: dict[str, Any] = {}

            def hand_over(prepared=prepared, handed=handed) -> bool:
                nonlocal accepted
                if not dispatcher.may_hand_over():  # stopping: given back below
                    return False
                previous = accepted
                handed["id"] = dispatcher.reminders.hand_over(
                    prepared.claim, now=utcnow(), delivery=prepared.delivery,
                    channel=prepared.channel,
                    also=(lambda session: _sent(dispatcher, session, previous))
                    if previous is not None else None)
                accepted = None  # settled with the hand-over, whether or not that was refused
                return handed["id"] is not None

            try:
                sender.send(prepared.message, recipient=prepared.address, hand_over=hand_over)
            except DeliveryError as failure:
                settle_accepted()
                outcomes.append(_not_accepted(dispatcher, prepared, failure, handed.get("id")))
                continue
            except Exception:  # noqa: BLE001 - one bad row must not stop the others
                log.exception("dispatch: sending %s failed unexpectedly", prepared.claim.id)
                sender._abandon()  # it may be inside a DATA: never reuse it
                settle_accepted()
                outcomes.append("error")  # left in ``sending``: recovery settles it
                continue
            accepted = (prepared, handed.get("id"), utcnow())
            outcomes.append("sent")
        settle_accepted()
    finally:
        sender.close()
    return outcomes


def send_sms(dispatcher: Dispatcher, prepared: Prepared, sender: SmsSender) -> str:
    """One SMS, at the provider's pace (``SMS_PROVIDER_RATE_PER_SECOND``, shared by the
    sending threads of this worker)."""
    item = prepared.item
    reminder, appointment = item.reminder, item.appointment
    answer_settings = dispatcher.config.answers
    handed: dict[str, Any] = {}

    def hand_over() -> bool:
        if not dispatcher.may_hand_over():
            return False
        handed["id"] = dispatcher.reminders.hand_over(
            prepared.claim, now=utcnow(), delivery=prepared.delivery, channel=prepared.channel)
        return handed["id"] is not None

    try:
        if prepared.answerable and answer_settings is not None:
            # A reply from this number may answer this appointment: its keyed hash (never
            # the number) is kept before the SMS leaves, so a quick reply finds it.
            with dispatcher.db.transaction() as session:
                answers.remember(session, key=answer_settings.link_key, number=prepared.address,
                                 appointment=appointment, reminder_id=reminder.id,
                                 language=prepared.language, at=utcnow())
        dispatcher.sms_pace.wait()
        sender.send(to=prepared.address, text=prepared.text, key=reminder.idempotency_key,
                    hand_over=hand_over)
    except DeliveryError as failure:
        return _not_accepted(dispatcher, prepared, failure, handed.get("id"))
    now = utcnow()
    with dispatcher.db.transaction() as session:
        _sent(dispatcher, session, (prepared, handed.get("id"), now))
    return "sent"


def _not_accepted(dispatcher: Dispatcher, prepared: Prepared, failure: DeliveryError,
                  delivery_id) -> str:
    claim, reminder, appointment = prepared.claim, prepared.item.reminder, prepared.item.appointment
    channel, delivery = prepared.channel, prepared.delivery
    config = dispatcher.config
    if isinstance(failure, HandOverRefused):
        if not dispatcher.may_hand_over():
            dispatcher.reminders.give_back(claim, now=utcnow())
            return "given_back"
        dispatcher.reminders.release(claim, now=utcnow(), due_at=utcnow(), error=None)
        return "not_ours"
    if isinstance(failure, TemporaryFailure):
        return _retry(dispatcher, claim, reminder, appointment, failure.code,
                      delivery=delivery, delivery_id=delivery_id)
    if isinstance(failure, PermanentFailure):
        return _fail(dispatcher, claim, reminder, appointment, failure.code,
                     delivery=delivery, delivery_id=delivery_id)
    if channel == "sms" and config.sms.idempotent:  # Unconfirmed; the provider de-duplicates
        return _retry(dispatcher, claim, reminder, appointment, failure.code,
                      delivery=delivery, delivery_id=delivery_id)
    now = utcnow()
    with dispatcher.db.transaction() as session:
        settle_delivery(session, delivery_id, outcome=UNCONFIRMED, error=failure.code)
        if dispatcher.reminders.finish(session, claim, now=now, status=SENT, sent_at=now,
                                       confirmed=False, last_error=failure.code):
            _post_unconfirmed(session, reminder, appointment, now=now, channel=channel)
    return "unconfirmed"


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
