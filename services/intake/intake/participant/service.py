"""Participant use cases. Data access never commits; the view's command owns the transaction."""
from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.errors import NotFound
from buendnis_common.service import ServiceRuntime
from intake.participant.models import Participant

# Crockford's base32 without I, L, O, U: easy to read aloud and to type.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_pseudonym(*, session: Session) -> str:
    """A short random pseudonym such as ``TN-7F3K2``, derived from nothing about the person."""
    while True:
        candidate = "TN-" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(5))
        taken = session.scalar(select(Participant.id).where(Participant.pseudonym == candidate))
        if taken is None:
            return candidate


def get(*, session: Session, principal: Principal, participant_id: uuid.UUID) -> Participant:
    """The caller's own participant; another organisation's answers 404 like a missing one."""
    participant = session.scalar(
        select(Participant).where(
            Participant.id == participant_id, Participant.owner_org == principal.org_alias
        )
    )
    if participant is None:
        raise NotFound("No such participant.")
    return participant


def list_own(*, session: Session, principal: Principal) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant)
            .where(Participant.owner_org == principal.org_alias)
            .order_by(Participant.created_at.desc(), Participant.id)
        )
    )


def register(
    *, runtime: ServiceRuntime, session: Session, principal: Principal, data: dict
) -> Participant:
    participant = Participant(
        id=uuid.uuid4(),
        owner_org=principal.org_alias,
        alliance=principal.alliance,
        pseudonym=new_pseudonym(session=session),
        **data,
    )
    session.add(participant)
    runtime.audit(session, "participant.create", participant_id=participant.id)
    runtime.emit(
        session,
        "participant.registered",
        participant_id=participant.id,
        owner_org=participant.owner_org,
        alliance=participant.alliance,
    )
    return participant


def erase(
    *, runtime: ServiceRuntime, session: Session, principal: Principal, participant_id: uuid.UUID
) -> None:
    participant = get(session=session, principal=principal, participant_id=participant_id)
    session.delete(participant)
    runtime.audit(session, "participant.erase", participant_id=participant_id)
    runtime.emit(
        session,
        "participant.erased",
        participant_id=participant_id,
        owner_org=participant.owner_org,
        alliance=participant.alliance,
    )
