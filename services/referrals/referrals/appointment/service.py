"""Appointment use cases. The referral's parties book, move, cancel and record attendance.

Data access never commits; the view's command owns the transaction.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import Conflict, FieldError, NotFound, Unprocessable
from buendnis_common.messages import Label
from buendnis_common.service import ServiceRuntime
from referrals.appointment.models import (
    BOOKED,
    CANCELLED,
    FULFILLED,
    NOSHOW,
    Appointment,
)
from referrals.permissions import require_case_work
from referrals.referral.models import Referral
from referrals.referral.service import ListFilters, _listing, event_fields, side_of


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _fields(referral: Referral, appointment: Appointment) -> dict[str, Any]:
    return {
        **event_fields(referral),
        "appointment_id": appointment.id,
        "start": appointment.start,
        "end": appointment.end,
        "mode": appointment.mode,
        "status": appointment.status,
    }


def _end_after_start(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Unprocessable("appointment.ends_before_start", field="end")


def book(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         referral: Referral, data: dict) -> Appointment:
    if referral.is_closed:
        closed = Label("referral_status", referral.status)
        raise Conflict("appointment.referral_closed", status=closed, errors={
            "referral": [FieldError("referral.is_status", status=closed)]})
    start, end = _utc(data["start"]), _utc(data["end"])
    _end_after_start(start, end)
    now = utcnow()
    appointment = Appointment(
        id=uuid.uuid4(), referral_id=referral.id, start=start, end=end, mode=data["mode"],
        location=data.get("location"), note=data.get("note"), status=BOOKED,
        booked_by_org=principal.org_alias, booked_by=principal.username,
        created_at=now, updated_at=now,
    )
    session.add(appointment)
    session.flush()
    runtime.audit(session, "appointment.create", participant_id=referral.participant_id,
                  owner_org=referral.from_org,
                  record_id=appointment.id)
    runtime.emit(session, "appointment.booked", **_fields(referral, appointment))
    return appointment


def of_referral(*, session: Session, referral: Referral) -> list[Appointment]:
    return list(session.scalars(
        select(Appointment).where(Appointment.referral_id == referral.id)
        .order_by(Appointment.start, Appointment.id)
    ))


def get_visible(*, session: Session, principal: Principal,
                appointment_id: uuid.UUID) -> tuple[Appointment, Referral]:
    """An appointment on a referral the caller's organisation sent or received; else 404."""
    require_case_work(principal, "work on appointments")
    appointment = session.get(Appointment, appointment_id)
    referral = session.get(Referral, appointment.referral_id) if appointment else None
    if referral is None or side_of(referral, principal) is None:
        raise NotFound("appointment.not_found")
    return appointment, referral


def list_visible(*, session: Session, principal: Principal, start: datetime | None = None,
                 end: datetime | None = None, status: str | None = None, offset: int,
                 limit: int, participant_response: str | None = None,
                 ) -> tuple[list[tuple[Appointment, uuid.UUID, str]], int]:
    """The appointments on referrals the caller's organisation sent or received (the same rule
    as the referrals' own list) that start in [``start``, ``end``), earliest first, each with
    its referral's participant id and sender (for the audit entry). ``start`` defaults to
    now."""
    require_case_work(principal, "work on appointments")
    visible = _listing(principal, ListFilters()).subquery()
    conditions = [Appointment.start >= (start or utcnow())]
    if end is not None:
        conditions.append(Appointment.start < end)
    if status is not None:
        conditions.append(Appointment.status == status)
    if participant_response is not None:
        conditions.append(Appointment.participant_response == participant_response)
    query = (select(Appointment, visible.c.participant_id, visible.c.from_org)
             .join(visible, Appointment.referral_id == visible.c.id).where(*conditions))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Appointment.start, Appointment.id).offset(offset).limit(limit)
    )
    return [(appointment, participant_id, owner) for appointment, participant_id, owner in rows], \
        total


def update(*, runtime: ServiceRuntime, session: Session, principal: Principal,
           appointment: Appointment, referral: Referral, data: dict,
           now: datetime | None = None) -> Appointment:
    """Move a booked appointment, change its mode, place or note, cancel it (with a reason)
    or record whether the participant came (``fulfilled``, ``noshow``)."""
    now = now or utcnow()
    status = data.pop("status", None)
    reason = (data.pop("reason", None) or "").strip() or None
    if appointment.status != BOOKED:
        current = Label("appointment_status", appointment.status)
        raise Conflict("appointment.unchangeable", status=current, errors={
            "status": [FieldError("appointment.is_status", status=current)]})
    if status not in (None, BOOKED) and ("start" in data or "end" in data):
        raise Unprocessable("appointment.move_or_status", field="status")

    if status == CANCELLED:
        if reason is None:
            raise Unprocessable("appointment.reason_required", field="reason")
        appointment.status = CANCELLED
        appointment.cancel_reason = reason
        event = "appointment.cancelled"
    elif status in (FULFILLED, NOSHOW):
        if appointment.start > now:
            raise Conflict("appointment.attendance_too_early", field="status")
        appointment.status = status
        event = "appointment.attended"
    else:
        event = None
    previous_start = appointment.start
    if "start" in data or "end" in data:
        if referral.is_closed:
            closed = Label("referral_status", referral.status)
            raise Conflict("appointment.referral_closed_keeps", status=closed, errors={
                "referral": [FieldError("referral.is_status", status=closed)]})
        start = _utc(data.pop("start", appointment.start))
        end = _utc(data.pop("end", appointment.end))
        _end_after_start(start, end)
        if (start, end) != (appointment.start, appointment.end):
            appointment.start, appointment.end = start, end
            event = "appointment.rescheduled"
    for name in ("mode", "location", "note"):
        if name in data:
            setattr(appointment, name, data[name])
    appointment.updated_at = now
    session.flush()
    runtime.audit(session, "appointment.update", participant_id=referral.participant_id,
                  owner_org=referral.from_org,
                  record_id=appointment.id)
    if event == "appointment.rescheduled":
        runtime.emit(session, event, **_fields(referral, appointment),
                     previous_start=previous_start)
    elif event is not None:
        runtime.emit(session, event, **_fields(referral, appointment))
    return appointment


def cancel_upcoming(*, runtime: ServiceRuntime, session: Session, referral: Referral,
                    now: datetime | None = None) -> list[Appointment]:
    """A referral that closes takes its upcoming booked appointments with it, so that nobody
    is reminded of a meeting that will not take place."""
    now = now or utcnow()
    upcoming = list(session.scalars(
        select(Appointment).where(Appointment.referral_id == referral.id,
                                  Appointment.status == BOOKED, Appointment.start > now)
    ))
    for appointment in upcoming:
        appointment.status = CANCELLED
        appointment.cancel_reason = f"The referral was {referral.status}."
        appointment.updated_at = now
    session.flush()
    for appointment in upcoming:
        runtime.audit(session, "appointment.cancel", participant_id=referral.participant_id,
                      owner_org=referral.from_org,
                      record_id=appointment.id)
        runtime.emit(session, "appointment.cancelled", **_fields(referral, appointment))
    return upcoming
