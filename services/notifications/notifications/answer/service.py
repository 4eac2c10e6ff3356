"""A participant's SMS reply, from the provider's webhook to its effect.

The number is never stored: each SMS about an appointment leaves the keyed hash of the number
it went to (``SmsRecipient``), and a reply's number is hashed the same way to find the next open
appointment reminded on it. A reply confirms it or asks to cancel it (passed on to referrals,
which records it on the appointment and tells both sides), STOP ends SMS to the number, START
takes that back; anything else goes to both case workers' inboxes as an unclear answer — its
text goes nowhere (not into logs, events or the inbox). Each MessageSid takes effect once.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from buendnis_common.service import ServiceRuntime
from notifications.answer import words
from notifications.answer.models import InboundSms, SmsOptOut, SmsRecipient
from notifications.appointment.models import BOOKED, Appointment
from notifications.inbox import models as kinds
from notifications.inbox import service as inbox
from notifications.messages.texts import DEFAULT_LANGUAGE, RTL_LANGUAGES, TEXTS

log = logging.getLogger(__name__)

_LABEL = b"buendnis.sms-number.v1"


def normal_number(number: str) -> str:
    digits = re.sub(r"[^\d+]", "", number or "")
    return "+" + digits[2:] if digits.startswith("00") else digits


def number_hash(key: str, number: str) -> str:
    """HMAC-SHA256 of the number under a key derived from ``ANSWER_LINK_KEY``: the same number
    finds its rows, and the rows alone do not give the number back."""
    subkey = hmac.new(key.encode("utf-8"), _LABEL, hashlib.sha256).digest()
    return hmac.new(subkey, normal_number(number).encode("utf-8"), hashlib.sha256).hexdigest()


def remember(session: Session, *, key: str, number: str, appointment: Appointment,
             reminder_id: uuid.UUID, language: str, at: datetime) -> None:
    """An SMS about ``appointment`` went to ``number``: a reply from it may answer it."""
    if session.scalar(select(SmsRecipient.id).where(SmsRecipient.reminder_id == reminder_id)):
        return
    session.add(SmsRecipient(appointment_id=appointment.id,
                             participant_id=appointment.participant_id, reminder_id=reminder_id,
                             number_hash=number_hash(key, number), language=language,
                             sent_at=at))


def stopped(session: Session, *, key: str, number: str) -> bool:
    """Did this number send STOP (and not START since)?"""
    return session.get(SmsOptOut, number_hash(key, number)) is not None


def stopped_numbers(session: Session, *, key: str, numbers: set[str]) -> set[str]:
    """``stopped`` for many numbers in one query: those that sent STOP (and not START)."""
    hashes = {number_hash(key, number): number for number in numbers}
    if not hashes:
        return set()
    return {hashes[found] for found in session.scalars(
        select(SmsOptOut.number_hash).where(SmsOptOut.number_hash.in_(list(hashes))))}


def forget_participant(session: Session, participant_id: uuid.UUID) -> None:
    session.execute(delete(SmsRecipient).where(SmsRecipient.participant_id == participant_id)
                    .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Outcome:
    outcome: str
    language: str | None
    replay: bool = False

    def acknowledgement(self) -> str | None:
        """The short answer to the participant, in their language; none to a number we never
        wrote to."""
        key = _ACKS.get(self.outcome)
        if key is None or self.language is None:
            return None
        language = self.language if self.language in TEXTS else DEFAULT_LANGUAGE
        text = TEXTS[language][key]
        return "\u200f" + text if language in RTL_LANGUAGES else text


_ACKS = {
    words.CONFIRM: "ack_confirmed", words.CANCEL: "ack_cancel_requested",
    "stopped": "ack_stop", "started": "ack_start", words.UNCLEAR: "ack_unclear",
    "no_appointment": "ack_no_appointment",
}


def _next_open(session: Session, digest: str, now: datetime) -> Appointment | None:
    return session.scalars(
        select(Appointment)
        .join(SmsRecipient, SmsRecipient.appointment_id == Appointment.id)
        .where(SmsRecipient.number_hash == digest, Appointment.status == BOOKED,
               Appointment.end > now)
        .order_by(Appointment.start, Appointment.id).limit(1)
    ).first()


def _tell_both(session: Session, appointment: Appointment, *, kind: str, dedupe: str,
               now: datetime, **extra) -> None:
    data = {"from_org": appointment.from_org, "to_org": appointment.to_org,
            "need_category": appointment.need_category, "start": appointment.start.isoformat(),
            "end": appointment.end.isoformat(), "mode": appointment.mode, "channel": "sms",
            **extra}
    data = {k: v for k, v in data.items() if v is not None}
    common = {"session": session, "kind": kind, "now": now,
              "referral_id": appointment.referral_id, "appointment_id": appointment.id,
              "participant_id": appointment.participant_id, "data": data}
    inbox.post(recipient_user=appointment.sender_user_id, recipient_org=appointment.from_org,
               dedupe_key=f"{dedupe}:{kind}:sender", **common)
    inbox.post(recipient_org=appointment.to_org, dedupe_key=f"{dedupe}:{kind}:receiver",
               **common)


def receive(runtime: ServiceRuntime, session: Session, *, key: str, sid: str, number: str,
            body: str, now: datetime) -> Outcome:
    """Act on one reply, once per MessageSid; the caller commits."""
    seen = session.get(InboundSms, sid)
    if seen is not None:
        return Outcome(seen.outcome, seen.language, replay=True)
    digest = number_hash(key, number)
    latest = session.scalars(
        select(SmsRecipient).where(SmsRecipient.number_hash == digest)
        .order_by(SmsRecipient.sent_at.desc()).limit(1)
    ).first()
    meaning = words.meaning(body)
    appointment = _next_open(session, digest, now) if latest is not None else None
    if latest is None:
        outcome = "unknown_number"
    elif meaning == words.STOP:
        outcome = "stopped"
        if session.get(SmsOptOut, digest) is None:
            session.add(SmsOptOut(number_hash=digest, at=now))
        if appointment is not None:
            _tell_both(session, appointment, kind=kinds.ANSWER_SMS_STOPPED, dedupe=sid, now=now)
    elif meaning == words.START:
        outcome = "started"
        session.execute(delete(SmsOptOut).where(SmsOptOut.number_hash == digest))
    elif appointment is None:
        outcome = "no_appointment"
    elif meaning in (words.CONFIRM, words.CANCEL):
        outcome = meaning
        # Referrals records it on the appointment and tells both sides (its event).
        runtime.emit(session, "answer.received", appointment_id=appointment.id,
                     response=meaning, responded_at=now, channel="sms")
    else:
        outcome = words.UNCLEAR
        _tell_both(session, appointment, kind=kinds.ANSWER_UNCLEAR, dedupe=sid, now=now)
    session.add(InboundSms(message_sid=sid, outcome=outcome, language=latest and latest.language,
                           appointment_id=appointment.id if appointment else None,
                           received_at=now))
    try:
        session.flush()
    except IntegrityError:  # the same MessageSid at the same moment, from another worker
        session.rollback()
        seen = session.get(InboundSms, sid)
        return Outcome(seen.outcome if seen else outcome, seen.language if seen else None,
                       replay=True)
    log.info("SMS reply: %s", outcome)  # the outcome only: never the number or the text
    return Outcome(outcome, latest.language if latest else None)


def record_refusal(runtime: ServiceRuntime, reason: str) -> None:
    """Audit a refused webhook call in a transaction of its own: the request's is rolled back
    with its 403, this entry must stay."""
    with runtime.db.transaction() as session:
        runtime.audit(session, f"sms_webhook.refused.{reason}")
