"""Consent use cases and what may be shared under a consent."""
from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common import directory
from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import FieldError, NotFound, Unprocessable
from buendnis_common.service import ServiceRuntime
from intake.consent.models import Consent
from intake.participant.models import Participant
from intake.participant.service import get as own_participant
from intake.participant.service import touch


def _ids(participant: Participant) -> dict:
    return {"participant_id": participant.id, "owner_org": participant.owner_org,
            "alliance": participant.alliance}


def grant(
    *, runtime: ServiceRuntime, session: Session, principal: Principal,
    participant: Participant, data: dict,
) -> Consent:
    recipient = data["recipient_org"]
    if recipient == participant.owner_org:
        raise Unprocessable("consent.own_organisation", errors={
            "recipient_org": [FieldError("consent.is_own_organisation")]})
    if not directory.same_alliance(recipient, participant.alliance):
        raise Unprocessable("consent.other_alliance", errors={
            "recipient_org": [FieldError("consent.unknown_organisation")]})
    consent = Consent(
        id=uuid.uuid4(),
        participant_id=participant.id,
        recipient_org=recipient,
        data_categories=sorted(data["data_categories"]),
        purpose=data["purpose"],
        valid_until=data["valid_until"],
        recorded_by=principal.username,
        recorded_by_org=principal.org_alias,
        recorded_at=utcnow(),
    )
    session.add(consent)
    touch(participant)
    runtime.audit(session, "consent.grant", participant_id=participant.id, record_id=consent.id)
    runtime.emit(session, "consent.granted", **_ids(participant), consent_id=consent.id,
                 recipient_org=recipient, valid_until=consent.valid_until)
    return consent


def get(*, session: Session, participant: Participant, consent_id: uuid.UUID) -> Consent:
    consent = session.scalar(
        select(Consent).where(Consent.id == consent_id, Consent.participant_id == participant.id)
    )
    if consent is None:
        raise NotFound("consent.not_found")
    return consent


def withdraw(
    *, runtime: ServiceRuntime, session: Session, principal: Principal,
    participant: Participant, consent: Consent,
) -> None:
    if consent.withdrawn_at is not None:
        return  # withdrawing twice changes nothing
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by = principal.username
    touch(participant)
    runtime.audit(session, "consent.withdraw", participant_id=participant.id,
                  record_id=consent.id)
    runtime.emit(session, "consent.withdrawn", **_ids(participant), consent_id=consent.id,
                 recipient_org=consent.recipient_org)


def valid_consent(*, session: Session, participant: Participant, recipient_org: str,
                  today: date) -> Consent | None:
    """The newest valid consent for ``recipient_org``, if any."""
    consents = session.scalars(
        select(Consent)
        .where(Consent.participant_id == participant.id, Consent.recipient_org == recipient_org,
               Consent.withdrawn_at.is_(None), Consent.valid_until >= today)
        .order_by(Consent.recorded_at.desc())
    ).all()
    return consents[0] if consents else None


def snapshot(participant: Participant, categories: list[str]) -> dict:
    """Exactly the consented categories of the person's data, and nothing else."""
    views = {
        "identity": lambda: {
            "given_name": participant.given_name,
            "family_name": participant.family_name,
            "birth_date": participant.birth_date.isoformat(),
            "gender": participant.gender,
            "nationality": participant.nationality,
        },
        "contact": lambda: participant.contact or {},
        "languages": lambda: list(participant.languages or []),
        "residence": lambda: {
            "residence_status": participant.residence_status,
            "residence_valid_until": participant.residence_valid_until.isoformat()
            if participant.residence_valid_until else None,
            "municipality": participant.municipality,
        },
        "needs": lambda: [
            {"id": str(need.id), "category": need.category, "status": need.status,
             "note": need.note}
            for need in participant.needs
        ],
        "education": lambda: participant.education or {},
    }
    return {category: views[category]() for category in categories if category in views}


def report_expired(*, runtime: ServiceRuntime, session: Session, today: date,
                   limit: int = 500) -> list[Consent]:
    """Consents past their last valid day that were neither withdrawn nor reported yet: each is
    marked and announced once (``consent.expired``), so that referrals drops what it holds under
    them and both sides hear of it. A withdrawn consent was announced when it was withdrawn."""
    query = (
        select(Consent)
        .where(Consent.withdrawn_at.is_(None), Consent.expired_at.is_(None),
               Consent.valid_until < today)
        .order_by(Consent.valid_until, Consent.id)
        .limit(limit)
    )
    if runtime.db.is_postgres:
        query = query.with_for_update(skip_locked=True)
    expired = list(session.scalars(query))
    now = utcnow()
    for consent in expired:
        consent.expired_at = now
        participant = consent.participant
        runtime.audit(session, "consent.expire", participant_id=participant.id,
                      record_id=consent.id, actor="system", actor_org=participant.owner_org)
        runtime.emit(session, "consent.expired", **_ids(participant), consent_id=consent.id,
                     recipient_org=consent.recipient_org, valid_until=consent.valid_until)
    return expired


def status_of(*, session: Session, consent_ids: list[uuid.UUID], today: date) -> dict:
    """For each id: does the consent hold today, and if not why; ids only, no personal data.
    An id intake does not know (the participant was erased) is ``unknown``."""
    found = {
        consent.id: consent for consent in session.scalars(
            select(Consent).where(Consent.id.in_(consent_ids))
        )
    } if consent_ids else {}
    answer = {}
    for consent_id in consent_ids:
        consent = found.get(consent_id)
        if consent is None:
            answer[str(consent_id)] = {"valid": False, "ended": "unknown"}
            continue
        answer[str(consent_id)] = {
            "valid": consent.is_valid(today),
            "ended": consent.ended(today),
            "valid_until": consent.valid_until.isoformat(),
            "recipient_org": consent.recipient_org,
            "data_categories": list(consent.data_categories),
        }
    return answer


# -- reads of the routes, audited here (the request's unit of work commits) ---------------------

def list_read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
              participant_id: uuid.UUID) -> list[Consent]:
    """Every consent of the caller's participant, audited as one read of the list."""
    participant = own_participant(session=session, principal=principal,
                                  participant_id=participant_id)
    runtime.audit(session, "consent.list", participant_id=participant.id)
    return participant.consents


def read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         participant_id: uuid.UUID, consent_id: uuid.UUID) -> Consent:
    participant = own_participant(session=session, principal=principal,
                                  participant_id=participant_id)
    consent = get(session=session, participant=participant, consent_id=consent_id)
    runtime.audit(session, "consent.read", participant_id=participant.id, record_id=consent.id)
    return consent


# -- what other services read under a consent, audited here -------------------------------------

def shared_with(*, runtime: ServiceRuntime, session: Session, participant: Participant,
                recipient_org: str, today: date) -> Consent | None:
    """The valid consent under which the owner may share the participant with
    ``recipient_org``; the share is audited for the receiver's auditors (without the owner's
    id in the trail)."""
    consent = valid_consent(session=session, participant=participant,
                            recipient_org=recipient_org, today=today)
    if consent is not None:
        runtime.audit(session, "participant.share", participant_id=participant.id,
                      owner_org=participant.owner_org, record_id=consent.id,
                      actor_org=consent.recipient_org)
    return consent


def contact_under_consent(*, runtime: ServiceRuntime, session: Session,
                          participant: Participant, recipient_org: str,
                          today: date) -> Consent | None:
    """The valid consent for ``recipient_org`` under which notifications may reach the
    participant (none: no contact data goes out); the read is audited for the owner."""
    consent = valid_consent(session=session, participant=participant,
                            recipient_org=recipient_org, today=today) if recipient_org else None
    if consent is not None:
        runtime.audit(session, "participant.contact", participant_id=participant.id,
                      record_id=consent.id, actor_org=participant.owner_org)
    return consent
