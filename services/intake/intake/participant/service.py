"""Participant use cases. Data access never commits; the view owns the transaction."""
from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from buendnis_common import directory
from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import NotFound
from buendnis_common.service import ServiceRuntime
from intake.participant.matching import match_key
from intake.participant.models import Need, Participant

# Crockford's base32 without I, L, O, U: easy to read aloud and to type.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _candidate() -> str:
    return "TN-" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(5))


def new_pseudonyms(*, session: Session, count: int) -> list[str]:
    """``count`` unused random pseudonyms such as ``TN-7F3K2``, derived from nothing about the
    person (32⁵ ≈ 33 million possibilities; collisions are drawn again)."""
    chosen: set[str] = set()
    while len(chosen) < count:
        batch = {_candidate() for _ in range(count - len(chosen))} - chosen
        taken = set(
            session.scalars(select(Participant.pseudonym).where(Participant.pseudonym.in_(batch)))
        )
        chosen |= batch - taken
    return list(chosen)


def get(*, session: Session, principal: Principal, participant_id: uuid.UUID) -> Participant:
    """The caller's own participant; another organisation's answers 404 like a missing one."""
    participant = session.scalar(
        select(Participant)
        .options(selectinload(Participant.needs))
        .where(Participant.id == participant_id, Participant.owner_org == principal.org_alias)
    )
    if participant is None:
        raise NotFound("participant.not_found")
    return participant


def get_owned_by(*, session: Session, owner_org: str, participant_id: uuid.UUID) -> Participant:
    participant = session.scalar(
        select(Participant).where(
            Participant.id == participant_id, Participant.owner_org == owner_org
        )
    )
    if participant is None:
        raise NotFound("participant.not_found")
    return participant


def list_own(
    *,
    session: Session,
    principal: Principal,
    filters: dict,
    offset: int,
    limit: int,
) -> tuple[list[Participant], int]:
    conditions = [Participant.owner_org == principal.org_alias]
    if filters.get("residence_status"):
        conditions.append(Participant.residence_status == filters["residence_status"])
    if filters.get("q"):
        pattern = f"%{filters['q'].lower()}%"
        conditions.append(
            or_(
                func.lower(Participant.given_name).like(pattern),
                func.lower(Participant.family_name).like(pattern),
            )
        )
    need_conditions = []
    if filters.get("need_category"):
        need_conditions.append(Need.category == filters["need_category"])
    if filters.get("need_status"):
        need_conditions.append(Need.status == filters["need_status"])
    if need_conditions:
        conditions.append(
            select(Need.id)
            .where(Need.participant_id == Participant.id, and_(*need_conditions))
            .exists()
        )
    total = session.scalar(select(func.count()).select_from(Participant).where(*conditions))
    participants = session.scalars(
        select(Participant)
        .options(selectinload(Participant.needs))
        .where(*conditions)
        .order_by(Participant.created_at.desc(), Participant.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(participants), total or 0


def possible_duplicates(*, session: Session, participant: Participant) -> list[dict]:
    """Other organisations of the same alliance holding a record with the same keyed hash:
    their alias and name, nothing about the record."""
    if participant.alliance is None:
        return []
    aliases = session.scalars(
        select(Participant.owner_org)
        .where(
            Participant.alliance == participant.alliance,
            Participant.match_key == participant.match_key,
            Participant.owner_org != participant.owner_org,
        )
        .distinct()
        .order_by(Participant.owner_org)
    ).all()
    hints = []
    for alias in aliases:
        organization = directory.organization(alias)
        name = organization.name if organization else alias
        hints.append({"organization": alias, "organization_name": name})
    return hints


def build(*, principal: Principal, data: dict, pseudonym: str, now: datetime) -> Participant:
    data = dict(data)
    needs = data.pop("needs", [])
    contact = data.pop("contact", None)
    participant = Participant(
        id=uuid.uuid4(),
        owner_org=principal.org_alias,
        alliance=principal.alliance,
        pseudonym=pseudonym,
        languages=data.pop("languages", []),
        match_key=match_key(data["given_name"], data["family_name"], data["birth_date"]),
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        **data,
    )
    participant.contact = contact
    participant.needs = [
        Need(id=uuid.uuid4(), category=need["category"], note=need.get("note"), status="open",
             created_at=now, updated_at=now)
        for need in needs
    ]
    return participant


def _emit_registered(runtime: ServiceRuntime, session: Session, participant: Participant) -> None:
    ids = _ids(participant)
    runtime.emit(session, "participant.registered", **ids)
    for need in participant.needs:
        runtime.emit(session, "need.changed", **ids, need_id=need.id, category=need.category,
                     status=need.status, previous_status=None)


def _ids(participant: Participant) -> dict:
    return {"participant_id": participant.id, "owner_org": participant.owner_org,
            "alliance": participant.alliance}


def register(
    *, runtime: ServiceRuntime, session: Session, principal: Principal, data: dict
) -> Participant:
    (pseudonym,) = new_pseudonyms(session=session, count=1)
    participant = build(principal=principal, data=data, pseudonym=pseudonym, now=utcnow())
    session.add(participant)
    runtime.audit(session, "participant.create", participant_id=participant.id)
    if participant.eligibility_override_reason:
        runtime.audit(session, "participant.eligibility_override", participant_id=participant.id)
    _emit_registered(runtime, session, participant)
    return participant


def register_many(
    *, runtime: ServiceRuntime, session: Session, principal: Principal, rows: list[dict],
    in_worker: bool = False,
) -> list[Participant]:
    """The import's bulk path: one pseudonym query, one flush. ``in_worker``: the audit
    entries name ``principal`` (no request there to name the actor)."""
    now = utcnow()
    pseudonyms = new_pseudonyms(session=session, count=len(rows))
    participants = [
        build(principal=principal, data=data, pseudonym=pseudonym, now=now)
        for data, pseudonym in zip(rows, pseudonyms, strict=True)
    ]
    session.add_all(participants)
    actor = {"actor": principal.username, "actor_org": principal.org_alias} if in_worker else {}
    runtime.audit_many(session, "participant.import", [p.id for p in participants], **actor)
    runtime.outbox.emit_many(session, "participant.registered", [_ids(p) for p in participants])
    runtime.outbox.emit_many(session, "need.changed", [
        {**_ids(p), "need_id": need.id, "category": need.category, "status": need.status,
         "previous_status": None}
        for p in participants for need in p.needs
    ])
    return participants


def update(
    *, runtime: ServiceRuntime, session: Session, participant: Participant, data: dict
) -> Participant:
    data = dict(data)
    if "contact" in data:
        participant.contact = data.pop("contact")
    for name, value in data.items():
        setattr(participant, name, value)
    if {"given_name", "family_name", "birth_date"} & set(data):
        participant.match_key = match_key(
            participant.given_name, participant.family_name, participant.birth_date
        )
    touch(participant)
    runtime.audit(session, "participant.update", participant_id=participant.id)
    runtime.emit(session, "participant.updated", **_ids(participant))
    return participant


def touch(participant: Participant) -> None:
    now = utcnow()
    participant.updated_at = now
    participant.last_activity_at = now


def add_need(
    *, runtime: ServiceRuntime, session: Session, participant: Participant, data: dict
) -> Need:
    now = utcnow()
    need = Need(id=uuid.uuid4(), participant_id=participant.id, category=data["category"],
                note=data.get("note"), status="open", created_at=now, updated_at=now)
    session.add(need)
    touch(participant)
    runtime.audit(session, "need.create", participant_id=participant.id, record_id=need.id)
    runtime.emit(session, "need.changed", **_ids(participant), need_id=need.id,
                 category=need.category, status=need.status, previous_status=None)
    return need


def get_need(*, session: Session, participant: Participant, need_id: uuid.UUID) -> Need:
    need = session.scalar(
        select(Need).where(Need.id == need_id, Need.participant_id == participant.id)
    )
    if need is None:
        raise NotFound("need.not_found")
    return need


def update_need(
    *, runtime: ServiceRuntime, session: Session, participant: Participant, need: Need,
    data: dict,
) -> Need:
    previous = need.status
    for name, value in data.items():
        setattr(need, name, value)
    need.updated_at = utcnow()
    touch(participant)
    runtime.audit(session, "need.update", participant_id=participant.id, record_id=need.id)
    if need.status != previous:
        runtime.emit(session, "need.changed", **_ids(participant), need_id=need.id,
                     category=need.category, status=need.status, previous_status=previous)
    return need


def erase(
    *, runtime: ServiceRuntime, session: Session, participant: Participant,
    actor: str | None = None,
) -> None:
    """Art. 17: the record, its needs and consents go; the audit trail keeps only ids."""
    ids = _ids(participant)
    for need in participant.needs:  # the gap counts must not keep counting an erased person
        if need.status in ("open", "in_progress"):
            runtime.emit(session, "need.changed", **ids, need_id=need.id, category=need.category,
                         status="dropped", previous_status=need.status)
    session.delete(participant)
    runtime.audit(session, "participant.erase", participant_id=ids["participant_id"],
                  actor=actor, actor_org=ids["owner_org"] if actor else None)
    runtime.emit(session, "participant.erased", **ids)


# -- what the routes do: read or write, and audit the read (a list once) ------------------------
# The request's unit of work commits (``buendnis_common.unit_of_work``); nothing here does.

def list_read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
              filters: dict, offset: int, limit: int) -> tuple[list[Participant], int]:
    """A page of the caller's participants, audited as one entry for the page."""
    participants, total = list_own(session=session, principal=principal, filters=filters,
                                   offset=offset, limit=limit)
    runtime.audit_many(session, "participant.list", [p.id for p in participants])
    return participants, total


def register_checked(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                     data: dict) -> Participant:
    """Register, and name the organisations of the alliance that may already know the person
    (``possible_duplicates``)."""
    participant = register(runtime=runtime, session=session, principal=principal, data=data)
    session.flush()
    participant.possible_duplicates = possible_duplicates(session=session,
                                                          participant=participant)
    return participant


def read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         participant_id: uuid.UUID, action: str = "participant.read") -> Participant:
    """The caller's own participant, the read audited as ``action``."""
    participant = get(session=session, principal=principal, participant_id=participant_id)
    runtime.audit(session, action, participant_id=participant.id)
    return participant


def read_need(*, runtime: ServiceRuntime, session: Session, principal: Principal,
              participant_id: uuid.UUID, need_id: uuid.UUID) -> Need:
    participant = get(session=session, principal=principal, participant_id=participant_id)
    need = get_need(session=session, participant=participant, need_id=need_id)
    runtime.audit(session, "need.read", participant_id=participant.id, record_id=need.id)
    return need


def profile_read(*, runtime: ServiceRuntime, session: Session,
                 participant_id: uuid.UUID) -> Participant:
    """What the owner's offer matching reads (referrals asks for it), audited for the owner."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound("participant.not_found")
    runtime.audit(session, "participant.profile", participant_id=participant.id,
                  actor_org=participant.owner_org)
    return participant
