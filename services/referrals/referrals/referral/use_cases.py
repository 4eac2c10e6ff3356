"""What each referral route does, one function each: read or write, audit (a list once), check
the receiver's consent, apply the rules that go with a change (closing a referral cancels its
upcoming appointments). The views only parse and serialise.

Nothing here commits: the request's unit of work (``buendnis_common.unit_of_work``) does, once,
with the change's events and audit entries. Two steps wait on intake and so must not hold the
transaction open (on SQLite it holds the database's write lock): the check on read takes a
``checkpoint`` first, and the second question after a referral is created runs after the commit.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from buendnis_common import unit_of_work
from buendnis_common.auth import Principal
from buendnis_common.service import ServiceRuntime
from referrals.appointment import service as appointments
from referrals.referral import consent_ends, fhir, service
from referrals.referral.models import Message, Referral, StatusChange
from referrals.referral.service import Context, ListFilters


def _audit(runtime: ServiceRuntime, session: Session, action: str, referral: Referral) -> None:
    runtime.audit(session, action, participant_id=referral.participant_id,
                  owner_org=referral.from_org, record_id=referral.id)


def seen(runtime: ServiceRuntime, session: Session, referrals: list[Referral],
         principal: Principal) -> list[dict[str, Any]]:
    """The referrals as ``principal`` sees them, the consent of each received one checked with
    intake now (``consent_ends``: one question for the page)."""
    unit_of_work.checkpoint()  # intake is asked with no transaction open
    unconfirmed = consent_ends.check_for_receiver(runtime, session, referrals, principal)
    views = []
    for referral in referrals:
        view = service.as_seen_by(referral, principal)
        if referral.id in unconfirmed and view["participant"] is not None:
            view["participant"] = {"pseudonym": view["participant"]["pseudonym"]}
        views.append(view)
    return views


def list_seen(*, runtime: ServiceRuntime, session: Session, principal: Principal,
              filters: ListFilters, offset: int, limit: int) -> tuple[list[dict], int]:
    """A page of the referrals the caller's organisation sent or received, audited as one
    entry for the page."""
    referrals, total = service.list_visible(session=session, principal=principal,
                                            filters=filters, offset=offset, limit=limit)
    runtime.audit_many(session, "referral.list", [r.participant_id for r in referrals],
                       record_ids=[r.id for r in referrals],
                       owner_orgs=[r.from_org for r in referrals])
    return seen(runtime, session, referrals, principal), total


def create(*, ctx: Context, session: Session, principal: Principal,
           data: dict) -> dict[str, Any]:
    """Refer a participant; once the referral is committed, intake is asked once more whether
    the consent still holds (``consent_ends.confirm_after_commit``)."""
    referral = service.create(ctx=ctx, session=session, principal=principal, data=data)
    unit_of_work.after_commit(lambda: consent_ends.confirm_after_commit(ctx.runtime, referral))
    return service.as_seen_by(referral, principal)


def read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         referral_id: uuid.UUID) -> dict[str, Any]:
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    _audit(runtime, session, "referral.read", referral)
    return seen(runtime, session, [referral], principal)[0]


def fhir_bundle(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                referral_id: uuid.UUID) -> dict[str, Any]:
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    _audit(runtime, session, "referral.fhir.read", referral)
    unit_of_work.checkpoint()  # intake is asked with no transaction open
    consent_ends.check_for_receiver(runtime, session, [referral], principal)
    return fhir.bundle(referral, appointments.of_referral(session=session, referral=referral))


def change_status(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                  referral_id: uuid.UUID, status: str, reason: str | None) -> dict[str, Any]:
    """Move the referral on; closing it cancels its upcoming appointments, in the same
    transaction."""
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    service.change_status(runtime=runtime, session=session, principal=principal,
                          referral=referral, status=status, reason=reason)
    if referral.is_closed:
        appointments.cancel_upcoming(runtime=runtime, session=session, referral=referral)
    return seen(runtime, session, [referral], principal)[0]


def history(*, runtime: ServiceRuntime, session: Session, principal: Principal,
            referral_id: uuid.UUID) -> list[StatusChange]:
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    _audit(runtime, session, "referral.history.read", referral)
    return referral.history


def messages(*, runtime: ServiceRuntime, session: Session, principal: Principal,
             referral_id: uuid.UUID) -> list[Message]:
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    thread = service.messages(session=session, referral=referral)
    _audit(runtime, session, "referral.message.list", referral)
    return thread


def post_message(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                 referral_id: uuid.UUID, text: str) -> Message:
    referral = service.get_visible(session=session, principal=principal,
                                   referral_id=referral_id)
    return service.post_message(runtime=runtime, session=session, principal=principal,
                                referral=referral, text=text)


def export_participant(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                       participant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Intake's Art. 15 export: the owner's referrals of the participant with history,
    messages and appointments, audited as one entry for the lot (by intake's service account,
    for the owner)."""
    found = service.of_participant(session=session, participant_id=participant_id)
    exported = [{
        **service.view_for(referral, "sender"),
        "history": referral.history,
        "messages": service.messages(session=session, referral=referral),
        "appointments": appointments.of_referral(session=session, referral=referral),
    } for referral in found]
    if found:
        runtime.audit_many(session, "referral.export", [participant_id] * len(found),
                           record_ids=[r.id for r in found], actor=principal.username,
                           actor_org=found[0].from_org)
    return exported
