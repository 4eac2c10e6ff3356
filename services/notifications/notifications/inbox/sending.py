"""Sending one claimed e-mail copy of an inbox entry to a partner's staff member (German)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from buendnis_common import directory, vocabulary
from buendnis_common.db import utcnow
from notifications.delivery import mail
from notifications.delivery.channels import (
    HandOverRefused,
    PermanentFailure,
    TemporaryFailure,
    Unconfirmed,
    mask_email,
)
from notifications.delivery.claims import Claim, settle_delivery
from notifications.delivery.models import (
    ACCEPTED,
    CANCELLED,
    FAILED,
    PERMANENT_FAILURE,
    SCHEDULED,
    SENDING,
    SENT,
    TEMPORARY_FAILURE,
    UNCONFIRMED,
    Delivery,
)
from notifications.inbox.models import EmailCopy, EmailPreference, InboxEntry, StaffMember
from notifications.messages.render import format_when
from notifications.messages.texts import INBOX_LANGUAGES

if TYPE_CHECKING:
    from notifications.delivery.dispatch import Dispatcher

# Needs and statuses are named by the shared vocabulary's words (buendnis_common.vocabulary),
# the same the web front end and the API's messages use.

# Why a receiver no longer sees the participant's data (``referral.consent_ended``).
REASON_NAMES = {
    "de": {"consent_withdrawn": "widerrufen", "consent_expired": "abgelaufen"},
    "en": {"consent_withdrawn": "withdrawn", "consent_expired": "expired"},
}


def _org_name(alias: str | None) -> str:
    organization = directory.organization(alias) if alias else None
    return organization.name if organization else (alias or "")


# How a participant's answer came.
_CHANNEL_NAMES = {"de": {"sms": "per SMS", "link": "über den Link der E-Mail"},
                  "en": {"sms": "by SMS", "link": "by the e-mail's link"}}


def describe(entry: InboxEntry, language: str = "de") -> str:
    """The entry in one sentence (the inbox's ``text``): German, or English when asked."""
    if language not in INBOX_LANGUAGES:
        language = "de"
    data = entry.data or {}
    when = ""
    if data.get("start"):
        when = format_when(datetime.fromisoformat(data["start"]), language)
    need = vocabulary.label("need_category", data.get("need_category") or "", language)
    if language == "en":
        # English writes the need in lower case inside the sentence; German nouns keep theirs.
        need = need[:1].lower() + need[1:]
    values = {
        "from_org_name": _org_name(data.get("from_org")),
        "to_org_name": _org_name(data.get("to_org")),
        "need": need,
        "status": vocabulary.label("referral_status", data.get("status") or "", language),
        "when": when,
        "reason": REASON_NAMES[language].get(data.get("reason") or "", data.get("reason") or ""),
        "channel": _CHANNEL_NAMES[language].get(data.get("channel") or "", ""),
    }
    return INBOX_LANGUAGES[language][entry.kind].format(**values)


@dataclass(frozen=True)
class ClaimedCopy:
    claim: Claim
    copy: EmailCopy
    entry: InboxEntry
    member: StaffMember | None
    switched_off: bool


def load(dispatcher: Dispatcher, claims: list[Claim]) -> list[ClaimedCopy]:
    """The claimed copies with their entries and recipients, in one read for the batch."""
    if not claims:
        return []
    by_id = {claim.id: claim for claim in claims}
    with dispatcher.db.transaction() as session:
        rows = session.execute(
            select(EmailCopy, InboxEntry, StaffMember)
            .join(InboxEntry, InboxEntry.id == EmailCopy.entry_id)
            .outerjoin(StaffMember, StaffMember.sub == EmailCopy.user_sub)
            .where(EmailCopy.id.in_(list(by_id)), EmailCopy.status == SENDING,
                   EmailCopy.claim_token == claims[0].token)
        ).all()
        off = set(session.execute(
            select(EmailPreference.user_sub, EmailPreference.kind).where(
                EmailPreference.user_sub.in_({copy.user_sub for copy, _, _ in rows}),
                EmailPreference.email.is_(False))
        ).all()) if rows else set()
    return [ClaimedCopy(by_id[copy.id], copy, entry, member,
                        (copy.user_sub, entry.kind) in off) for copy, entry, member in rows]


def send_copy(dispatcher: Dispatcher, item: ClaimedCopy) -> str:
    claims = dispatcher.copies
    claim, copy, entry, member = item.claim, item.copy, item.entry, item.member
    switched_off = item.switched_off
    now = utcnow()
    if member is None or not member.email or switched_off:
        with dispatcher.db.transaction() as session:
            claims.finish(session, claim, now=now, status=CANCELLED,
                          last_error="switched_off" if switched_off else "no_address")
        return "cancelled"
    text = describe(entry)
    body = (f"{text}\n\nDetails finden Sie in Ihrem Bündnis-Posteingang.\n\n"
            "Diese E-Mail-Kopien können Sie dort je Art der Benachrichtigung abschalten.")
    message = mail.build(key=copy.idempotency_key, sender=dispatcher.config.smtp.sender,
                         recipient=member.email, subject=f"Bündnis: {text}", text=body,
                         now=now)
    delivery = {"email_copy_id": copy.id, "channel": "email", "language": "de",
                "masked_address": mask_email(member.email),
                "idempotency_key": copy.idempotency_key, "attempt": copy.attempts}
    handed: dict[str, Any] = {}

    def hand_over() -> bool:
        handed["id"] = claims.hand_over(claim, now=utcnow(), delivery=delivery)
        return handed["id"] is not None

    outcome, status, error = ACCEPTED, SENT, None
    try:
        dispatcher.smtp().send(message, recipient=member.email, hand_over=hand_over)
    except HandOverRefused:
        claims.release(claim, now=utcnow(), due_at=utcnow(), error=None)
        return "not_ours"
    except Unconfirmed as failure:
        outcome, error = UNCONFIRMED, failure.code
    except TemporaryFailure as failure:
        outcome, status, error = TEMPORARY_FAILURE, SCHEDULED, failure.code
        if copy.attempts >= dispatcher.config.max_attempts:
            status = FAILED
    except PermanentFailure as failure:
        outcome, status, error = PERMANENT_FAILURE, FAILED, failure.code
    now = utcnow()
    with dispatcher.db.transaction() as session:
        if handed.get("id") is not None:
            settle_delivery(session, handed["id"], outcome=outcome, error=error)
        else:
            session.add(Delivery(outcome=outcome, error=error, at=now, **delivery))
        values: dict[str, Any] = {"last_error": error}
        if status == SENT:
            values.update(sent_at=now, confirmed=outcome == ACCEPTED)
        elif status == SCHEDULED:
            values.update(due_at=now + dispatcher.backoff(copy.attempts), claim_token=None,
                          claimed_by=None, handed_over_at=None)
        claims.finish(session, claim, now=now, status=status, **values)
    return outcome if status != SCHEDULED else "retry"
