"""Handlers of intake's events about erasure."""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from buendnis_common.events import Event
from buendnis_common.service import ServiceRuntime
from referrals.erasure.models import ParticipantErasure
from referrals.referral import service as referrals


def on_participant_erased(runtime: ServiceRuntime, *, session: Session, event: Event) -> None:
    """Remember the erasure (new referrals for the person are refused) and drop what the
    referrals hold about the person."""
    participant_id = uuid.UUID(event.data["participant_id"])
    if session.get(ParticipantErasure, participant_id) is None:
        session.add(
            ParticipantErasure(
                participant_id=participant_id,
                owner_org=event.data["owner_org"],
                erased_at=event.occurred_at,
                event_id=event.id,
            )
        )
    referrals.erase_participant(
        runtime=runtime, session=session, participant_id=participant_id,
        owner_org=event.data["owner_org"],
    )
