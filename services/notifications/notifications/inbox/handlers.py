"""Inbox entries from referrals' events: who is told what.

- a referral arrives → every case worker of the receiving organisation;
- accepted, rejected, overdue → the case worker who made the referral;
- any other status change, and a message on the referral → the other side (the receiving
  organisation's case workers, or the case worker who made the referral);
- the participant's consent ended (withdrawn or expired) and the receiver's copy of their data
  was dropped → both sides.
"""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from buendnis_common.db import utcnow
from buendnis_common.events import Event
from buendnis_common.service import EventHandlers
from notifications.inbox import models as kinds
from notifications.inbox import service

handlers = EventHandlers()

_CODES = ("from_org", "to_org", "need_category", "status", "previous_status", "changed_by_org",
          "author_org", "due_at", "start", "end", "previous_start", "mode", "reason")


def entry_data(event: Event) -> dict:
    return {key: event.data[key] for key in _CODES if event.data.get(key) is not None}


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def to_sender(*, session: Session, event: Event, kind: str, **extra) -> None:
    """To the case worker who made the referral (or, without one, the sending organisation)."""
    data = event.data
    user = data.get("sender_user_id")
    service.post(
        session=session, kind=kind, recipient_user=user, recipient_org=data["from_org"],
        dedupe_key=f"{event.id}:{kind}:{user or data['from_org']}", now=utcnow(),
        referral_id=_uuid(data.get("referral_id")),
        participant_id=_uuid(data.get("participant_id")), data=entry_data(event), **extra,
    )


def to_receiver(*, session: Session, event: Event, kind: str) -> None:
    """To every case worker of the receiving organisation."""
    data = event.data
    service.post(
        session=session, kind=kind, recipient_org=data["to_org"],
        dedupe_key=f"{event.id}:{kind}:{data['to_org']}", now=utcnow(),
        referral_id=_uuid(data.get("referral_id")),
        participant_id=_uuid(data.get("participant_id")), data=entry_data(event),
    )


@handlers.on("referral.requested")
def on_referral_requested(*, session: Session, event: Event) -> None:
    to_receiver(session=session, event=event, kind=kinds.REFERRAL_RECEIVED)


@handlers.on("referral.status_changed")
def on_referral_status_changed(*, session: Session, event: Event) -> None:
    status = event.data.get("status")
    if status == "accepted":
        to_sender(session=session, event=event, kind=kinds.REFERRAL_ACCEPTED)
    elif status == "rejected":
        to_sender(session=session, event=event, kind=kinds.REFERRAL_REJECTED)
    elif event.data.get("changed_by_org") == event.data.get("from_org"):
        to_receiver(session=session, event=event, kind=kinds.REFERRAL_STATUS_CHANGED)
    else:
        to_sender(session=session, event=event, kind=kinds.REFERRAL_STATUS_CHANGED)


@handlers.on("referral.overdue")
def on_referral_overdue(*, session: Session, event: Event) -> None:
    to_sender(session=session, event=event, kind=kinds.REFERRAL_OVERDUE)


@handlers.on("referral.snapshot_dropped")
def on_referral_snapshot_dropped(*, session: Session, event: Event) -> None:
    """The consent ended (withdrawn, expired): both sides hear that the receiver no longer sees
    the participant's data — the sender who made the referral and the receiver's case workers."""
    to_sender(session=session, event=event, kind=kinds.REFERRAL_CONSENT_ENDED)
    to_receiver(session=session, event=event, kind=kinds.REFERRAL_CONSENT_ENDED)


@handlers.on("referral.message_posted")
def on_referral_message_posted(*, session: Session, event: Event) -> None:
    if event.data.get("author_org") == event.data.get("from_org"):
        to_receiver(session=session, event=event, kind=kinds.REFERRAL_MESSAGE)
    else:
        to_sender(session=session, event=event, kind=kinds.REFERRAL_MESSAGE)
