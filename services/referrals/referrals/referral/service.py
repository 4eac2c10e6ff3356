"""Referral use cases: create with a consent check, the state machine, history, messages, the
overdue sweep, and dropping the snapshot when consent ends.

Data access never commits; the view's command (or the event consumer) owns the transaction.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from buendnis_common import directory
from buendnis_common.auth import Principal
from buendnis_common.context import Context
from buendnis_common.db import utcnow
from buendnis_common.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from buendnis_common.messages import Label
from buendnis_common.service import ServiceRuntime
from referrals import intake
from referrals.appointment.models import Appointment
from referrals.erasure.models import ParticipantErasure
from referrals.offer.models import Offer
from referrals.permissions import require_case_work
from referrals.referral.models import (
    ACCEPTED,
    CANCELLED,
    CLOSED,
    COMPLETED,
    CONSENT_WITHDRAWN,
    FAILED,
    IN_PROGRESS,
    ON_HOLD,
    PARTICIPANT_ERASED,
    REJECTED,
    REQUESTED,
    Message,
    Referral,
    StatusChange,
    WithdrawnConsent,
)

Side = Literal["sender", "receiver"]

# The state machine of DESIGN.md (FHIR Task codes).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    REQUESTED: (ACCEPTED, REJECTED, CANCELLED),
    ACCEPTED: (IN_PROGRESS, ON_HOLD, COMPLETED, FAILED, CANCELLED),
    IN_PROGRESS: (ON_HOLD, COMPLETED, FAILED, CANCELLED),
    ON_HOLD: (IN_PROGRESS, COMPLETED, FAILED, CANCELLED),
}
# The receiver accepts, rejects, starts, holds, completes, fails; either party cancels.
SET_BY: dict[str, frozenset[str]] = {
    ACCEPTED: frozenset({"receiver"}),
    REJECTED: frozenset({"receiver"}),
    IN_PROGRESS: frozenset({"receiver"}),
    ON_HOLD: frozenset({"receiver"}),
    COMPLETED: frozenset({"receiver"}),
    FAILED: frozenset({"receiver"}),
    CANCELLED: frozenset({"sender", "receiver"}),
}
REASON_REQUIRED = frozenset({REJECTED, CANCELLED, ON_HOLD, FAILED})
# Who may set a status the caller's side may not, and whether the caller may set others now.
_SET_BY_OTHER_SIDE = {
    (frozenset({"receiver"}), True): "referral.set_by_receiver",
    (frozenset({"receiver"}), False): "referral.set_by_receiver_only",
    (frozenset({"sender"}), True): "referral.set_by_sender",
    (frozenset({"sender"}), False): "referral.set_by_sender_only",
    (frozenset({"sender", "receiver"}), True): "referral.set_by_sides",
    (frozenset({"sender", "receiver"}), False): "referral.set_by_sides_only",
}


def side_of(referral: Referral, principal: Principal) -> Side | None:
    if principal.org_alias == referral.from_org:
        return "sender"
    if principal.org_alias == referral.to_org:
        return "receiver"
    return None


def allowed_next(referral: Referral, side: Side | None) -> list[str]:
    """The statuses ``side`` may set now, in the state machine's order."""
    return [s for s in TRANSITIONS.get(referral.status, ()) if side in SET_BY[s]]


def event_fields(referral: Referral) -> dict[str, Any]:
    """The ids and codes every referral.* and appointment.* event carries."""
    return {
        "referral_id": referral.id,
        "participant_id": referral.participant_id,
        "from_org": referral.from_org,
        "to_org": referral.to_org,
        "alliance": referral.alliance,
        "need_category": referral.need_category,
        "sender_user_id": referral.sender_user_id,
    }


# -- reading ----------------------------------------------------------------------------------

def get_visible(*, session: Session, principal: Principal, referral_id: uuid.UUID) -> Referral:
    """A referral the caller's organisation sent or received; anyone else's answers 404."""
    require_case_work(principal, "work on referrals")
    referral = session.get(Referral, referral_id)
    if referral is None or side_of(referral, principal) is None:
        raise NotFound("referral.not_found")
    return referral


@dataclass(frozen=True)
class ListFilters:
    box: str | None = None
    statuses: tuple[str, ...] = ()
    overdue: bool | None = None
    participant_id: uuid.UUID | None = None
    # Only referrals with a booked appointment whose participant asked to cancel it.
    cancel_requested: bool | None = None


def _listing(principal: Principal, filters: ListFilters) -> Select:
    me = principal.org_alias
    if filters.box == "sent":
        query = select(Referral).where(Referral.from_org == me)
    elif filters.box == "received":
        query = select(Referral).where(Referral.to_org == me)
    else:
        query = select(Referral).where(or_(Referral.from_org == me, Referral.to_org == me))
    if filters.statuses:
        query = query.where(Referral.status.in_(filters.statuses))
    if filters.overdue is True:
        query = query.where(Referral.overdue_at.is_not(None), Referral.status == REQUESTED)
    elif filters.overdue is False:
        query = query.where(or_(Referral.overdue_at.is_(None), Referral.status != REQUESTED))
    if filters.participant_id is not None:
        # Only the sender knows the participant's id.
        query = query.where(
            Referral.participant_id == filters.participant_id, Referral.from_org == me
        )
    if filters.cancel_requested:
        query = query.where(select(Appointment.id).where(
            Appointment.referral_id == Referral.id, Appointment.status == "booked",
            Appointment.participant_response == "cancel_requested").exists())
    return query


def list_visible(
    *, session: Session, principal: Principal, filters: ListFilters, offset: int, limit: int
) -> tuple[list[Referral], int]:
    require_case_work(principal, "work on referrals")
    query = _listing(principal, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    referrals = session.scalars(
        query.order_by(Referral.created_at.desc(), Referral.id).offset(offset).limit(limit)
    )
    return list(referrals), total


def participant_view(referral: Referral) -> dict[str, Any] | None:
    """The pseudonym and the consented categories of the snapshot, nothing else."""
    if referral.pseudonym is None:
        return None
    shown: dict[str, Any] = {"pseudonym": referral.pseudonym}
    snapshot = referral.snapshot or {}
    for category in referral.shared_categories or []:
        if category in snapshot:
            shown[category] = snapshot[category]
    return shown


def as_seen_by(referral: Referral, principal: Principal) -> dict[str, Any]:
    return view_for(referral, side_of(referral, principal))


def view_for(referral: Referral, side: Side | None) -> dict[str, Any]:
    """The receiver's view: the referral, the pseudonym and the consented categories. The
    sender's view adds its own reference: the participant's id, its note, the consent."""
    view: dict[str, Any] = {
        "id": referral.id,
        "status": referral.status,
        "from_org": referral.from_org,
        "to_org": referral.to_org,
        "alliance": referral.alliance,
        "need_category": referral.need_category,
        "offer_id": referral.offer_id,
        "sender_user": referral.sender_user,
        "participant": participant_view(referral),
        "shared_categories": list(referral.shared_categories or []),
        "snapshot_dropped_at": referral.snapshot_dropped_at,
        "snapshot_dropped_reason": referral.snapshot_dropped_reason,
        "created_at": referral.created_at,
        "updated_at": referral.updated_at,
        "due_at": referral.due_at,
        "overdue": referral.overdue,
        "overdue_at": referral.overdue_at,
        "answered_at": referral.answered_at,
        "closed_at": referral.closed_at,
        "viewer_role": side,
        "allowed_statuses": allowed_next(referral, side),
    }
    if side == "sender":
        view.update(
            participant_id=referral.participant_id,
            note=referral.note,
            consent_id=referral.consent_id,
        )
    return view


# -- creating ---------------------------------------------------------------------------------

def _check_receiver(*, principal: Principal, to_org: str) -> None:
    if to_org == principal.org_alias:
        raise Unprocessable("referral.to_own_organisation", field="to_org")
    # The realm file (setting REALM_FILE) knows every organisation's alliance; intake does not.
    organisation = directory.organization(to_org)
    if organisation is None or organisation.alliance != principal.alliance:
        raise Unprocessable("referral.unknown_organisation", field="to_org", org=to_org)


def _check_offer(*, session: Session, principal: Principal, offer_id: uuid.UUID,
                 to_org: str, need_category: str) -> None:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.alliance != principal.alliance:
        raise Unprocessable("referral.offer_unknown", field="offer_id")
    if offer.provider_org != to_org:
        raise Unprocessable("referral.offer_other_provider", field="offer_id", org=to_org)
    if offer.category != need_category:
        raise Unprocessable("referral.offer_other_need", field="offer_id",
                            offer=Label("need_category", offer.category),
                            need=Label("need_category", need_category))
    if not offer.active:
        raise Unprocessable("referral.offer_inactive", field="offer_id")


def _check_not_open_already(*, session: Session, principal: Principal, data: dict) -> None:
    """One open referral per participant, receiver and need: a second one would only
    confuse the receiver."""
    open_one = session.scalar(
        select(Referral.id).where(
            Referral.participant_id == data["participant_id"],
            Referral.from_org == principal.org_alias,
            Referral.to_org == data["to_org"],
            Referral.need_category == data["need_category"],
            Referral.status.not_in(CLOSED),
        ).limit(1)
    )
    if open_one is not None:
        raise Conflict("referral.already_open", field="to_org", org=data["to_org"],
                       need=Label("need_category", data["need_category"]),
                       referral=str(open_one))


def create(*, ctx: Context, session: Session, principal: Principal, data: dict,
           now: datetime | None = None) -> Referral:
    """Refer the caller's participant to another organisation of the alliance, if the
    participant consented to share data with it. Asks intake first; if intake cannot answer,
    nothing is written."""
    require_case_work(principal, "refer participants")
    participant_id: uuid.UUID = data["participant_id"]
    to_org: str = data["to_org"]
    _check_receiver(principal=principal, to_org=to_org)
    # Intake is asked before the first query: on SQLite a transaction holds the write lock
    # (BEGIN IMMEDIATE), which must not wait on another service.
    sharing = intake.sharing(
        ctx.runtime, participant_id=participant_id, owner_org=principal.org_alias,
        recipient_org=to_org,
    )
    if sharing is None or session.get(ParticipantErasure, participant_id) is not None:
        raise NotFound("participant.not_found", field="participant_id")
    if data.get("offer_id"):
        _check_offer(session=session, principal=principal, offer_id=data["offer_id"],
                     to_org=to_org, need_category=data["need_category"])
    _check_not_open_already(session=session, principal=principal, data=data)
    consent = sharing.consent
    if consent is None or consent.recipient_org != to_org or consent.purpose not in (
        None, "referral"
    ) or session.get(WithdrawnConsent, consent.id) is not None:
        raise Conflict("referral.consent_missing", org=to_org,
                       errors={"consent": [FieldError("referral.no_valid_consent", org=to_org)]})

    now = now or utcnow()
    categories = list(consent.data_categories)
    referral = Referral(
        id=uuid.uuid4(),
        participant_id=participant_id,
        pseudonym=sharing.pseudonym,
        from_org=principal.org_alias,
        to_org=to_org,
        alliance=principal.alliance,
        need_category=data["need_category"],
        offer_id=data.get("offer_id"),
        note=data.get("note"),
        status=REQUESTED,
        consent_id=consent.id,
        shared_categories=categories,
        snapshot={c: sharing.snapshot[c] for c in categories if c in sharing.snapshot},
        sender_user=principal.username,
        sender_user_id=principal.subject,
        created_at=now,
        updated_at=now,
        due_at=due_for(ctx=ctx, alliance=principal.alliance, sent_at=now),
    )
    referral.history.append(
        StatusChange(status=REQUESTED, previous_status=None, organization=principal.org_alias,
                     user=principal.username, at=now)
    )
    session.add(referral)
    ctx.runtime.audit(session, "referral.create", participant_id=participant_id,
                      record_id=referral.id)
    ctx.runtime.emit(session, "referral.requested", **event_fields(referral))
    return referral


def due_for(*, ctx: Context, alliance: str | None, sent_at: datetime) -> datetime:
    """When the receiver should have answered: the alliance's response time in working days
    (weekends and public holidays do not count)."""
    return ctx.config.calendar.add_working_days(sent_at, ctx.config.response_days_for(alliance))


# -- the state machine ------------------------------------------------------------------------

def change_status(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                  referral: Referral, status: str, reason: str | None,
                  now: datetime | None = None) -> Referral:
    side = side_of(referral, principal)
    mine = allowed_next(referral, side)
    if status not in TRANSITIONS.get(referral.status, ()):
        code = "referral.cannot_become" if mine else "referral.cannot_become_final"
        raise Conflict(code, field="status", errors={"allowed": mine},
                       current=Label("referral_status", referral.status),
                       wanted=Label("referral_status", status), allowed=mine)
    if status not in mine:
        code = _SET_BY_OTHER_SIDE[SET_BY[status], bool(mine)]
        raise Forbidden(code, field="status", errors={"allowed": mine},
                        status=Label("referral_status", status), allowed=mine)
    reason = (reason or "").strip() or None
    if status in REASON_REQUIRED and reason is None:
        raise Unprocessable("referral.reason_required", field="reason",
                            status=Label("referral_status", status))
    now = now or utcnow()
    previous = referral.status
    referral.status = status
    referral.updated_at = now
    if previous == REQUESTED and side == "receiver" and referral.answered_at is None:
        referral.answered_at = now
    if status in CLOSED:
        referral.closed_at = now
    referral.history.append(
        StatusChange(status=status, previous_status=previous, organization=principal.org_alias,
                     user=principal.username, at=now, reason=reason)
    )
    session.flush()
    runtime.audit(session, "referral.status", participant_id=referral.participant_id,
                  owner_org=referral.from_org, record_id=referral.id)
    runtime.emit(session, "referral.status_changed", **event_fields(referral), status=status,
                 previous_status=previous, changed_by_org=principal.org_alias)
    return referral


# -- messages ---------------------------------------------------------------------------------

def messages(*, session: Session, referral: Referral) -> list[Message]:
    return list(session.scalars(
        select(Message).where(Message.referral_id == referral.id)
        .order_by(Message.created_at, Message.id)
    ))


def post_message(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                 referral: Referral, text: str) -> Message:
    message = Message(
        id=uuid.uuid4(), referral_id=referral.id, author_org=principal.org_alias,
        author=principal.username, text=text, created_at=utcnow(),
    )
    session.add(message)
    runtime.audit(session, "referral.message.post", participant_id=referral.participant_id,
                  owner_org=referral.from_org, record_id=referral.id)
    runtime.emit(session, "referral.message_posted", **event_fields(referral),
                 message_id=message.id, author_org=principal.org_alias)
    return message


# -- response time ----------------------------------------------------------------------------

def mark_overdue(*, runtime: ServiceRuntime, session: Session, now: datetime | None = None,
                 limit: int = 500) -> list[Referral]:
    """Mark every referral still unanswered at its due time overdue, once, and publish
    ``referral.overdue`` for each (the notifications service tells the sender)."""
    now = now or utcnow()
    query = (
        select(Referral)
        .where(Referral.status == REQUESTED, Referral.overdue_at.is_(None),
               Referral.due_at <= now)
        .order_by(Referral.due_at)
        .limit(limit)
    )
    if runtime.db.is_postgres:
        query = query.with_for_update(skip_locked=True)
    marked = list(session.scalars(query))
    for referral in marked:
        referral.overdue_at = now
        runtime.emit(session, "referral.overdue", **event_fields(referral),
                     due_at=referral.due_at)
    session.flush()
    return marked


# -- consent ends -----------------------------------------------------------------------------

def _drop_snapshot(runtime: ServiceRuntime, session: Session, referral: Referral, reason: str,
                   at: datetime, owner_org: str | None) -> None:
    referral.snapshot = None
    referral.shared_categories = []
    referral.snapshot_dropped_at = at
    referral.snapshot_dropped_reason = reason
    referral.updated_at = at
    # The same path to the trail as every other entry (here, and as an event to the gateway).
    runtime.audit(session, "referral.snapshot.drop", participant_id=referral.participant_id,
                  record_id=referral.id, actor="system", actor_org=owner_org)


def drop_for_withdrawn_consent(*, runtime: ServiceRuntime, session: Session,
                               participant_id: uuid.UUID, owner_org: str,
                               recipient_org: str, consent_id: uuid.UUID | None,
                               withdrawn_at: datetime) -> list[Referral]:
    """Stop sharing at once: every snapshot held for the recipient made under this consent,
    or before it was withdrawn, is dropped; the referral keeps why."""
    query = select(Referral).where(
        Referral.participant_id == participant_id,
        Referral.from_org == owner_org,
        Referral.to_org == recipient_org,
        Referral.snapshot_dropped_at.is_(None),
    )
    if consent_id is not None and session.get(WithdrawnConsent, consent_id) is None:
        session.add(WithdrawnConsent(consent_id=consent_id, participant_id=participant_id,
                                     recipient_org=recipient_org, withdrawn_at=withdrawn_at))
    # A referral made later under a new consent for the same recipient keeps its snapshot.
    made_before = Referral.created_at <= withdrawn_at
    if consent_id is not None:
        made_before = or_(Referral.consent_id == consent_id, made_before)
    # Locked: a reader dropping one of them at the same moment (``consent_ends``) goes first.
    dropped = list(session.scalars(query.where(made_before).with_for_update()))
    now = utcnow()
    for referral in dropped:
        _drop_snapshot(runtime, session, referral, CONSENT_WITHDRAWN, now, owner_org)
    return dropped


def erase_participant(*, runtime: ServiceRuntime, session: Session, participant_id: uuid.UUID,
                      owner_org: str) -> int:
    """Art. 17: drop every snapshot and pseudonym of the participant and empty the free text
    written about them (notes, reasons, messages, appointment notes and places). What stays
    are ids, codes and times, for the alliance's figures."""
    now = utcnow()
    referrals = list(session.scalars(
        select(Referral).where(Referral.participant_id == participant_id)
    ))
    for referral in referrals:
        if referral.snapshot_dropped_reason != PARTICIPANT_ERASED:
            _drop_snapshot(runtime, session, referral, PARTICIPANT_ERASED, now, owner_org)
        referral.pseudonym = None
        referral.note = None
        for change in referral.history:
            change.reason = None
        for message in session.scalars(select(Message).where(Message.referral_id == referral.id)):
            message.text = None
        for appointment in session.scalars(
            select(Appointment).where(Appointment.referral_id == referral.id)
        ):
            appointment.note = None
            appointment.location = None
            appointment.cancel_reason = None
    return len(referrals)


# -- Art. 15 ----------------------------------------------------------------------------------

def of_participant(*, session: Session, participant_id: uuid.UUID) -> list[Referral]:
    """Every referral of the participant: all sent by their owner (only the owner can refer, as
    intake's record says), so each one's ``from_org`` is the owner."""
    return list(session.scalars(
        select(Referral)
        .where(Referral.participant_id == participant_id)
        .order_by(Referral.created_at, Referral.id)
    ))
