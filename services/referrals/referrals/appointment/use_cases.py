"""What each appointment route does, one function each, audited here (a list once); the views
only parse and serialise, the request's unit of work commits (``buendnis_common.unit_of_work``).
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.service import ServiceRuntime
from referrals.appointment import service
from referrals.appointment.models import Appointment
from referrals.referral import service as referrals


def of_referral(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                referral_id: uuid.UUID) -> list[Appointment]:
    """The referral's appointments, audited as one read of the referral."""
    referral = referrals.get_visible(session=session, principal=principal,
                                     referral_id=referral_id)
    found = service.of_referral(session=session, referral=referral)
    runtime.audit(session, "appointment.list", participant_id=referral.participant_id,
                  owner_org=referral.from_org, record_id=referral.id)
    return found


def book(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         referral_id: uuid.UUID, data: dict) -> Appointment:
    referral = referrals.get_visible(session=session, principal=principal,
                                     referral_id=referral_id)
    return service.book(runtime=runtime, session=session, principal=principal,
                        referral=referral, data=data)


def list_visible(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                 start: datetime | None, end: datetime | None, status: str | None,
                 participant_response: str | None, offset: int,
                 limit: int) -> tuple[list[Appointment], int]:
    """A page of appointments, audited as one entry for the page."""
    found, total = service.list_visible(
        session=session, principal=principal, start=start, end=end, status=status,
        participant_response=participant_response, offset=offset, limit=limit)
    runtime.audit_many(session, "appointment.list", [pid for _a, pid, _o in found],
                       record_ids=[a.id for a, _p, _o in found],
                       owner_orgs=[owner for _a, _p, owner in found])
    return [appointment for appointment, _pid, _owner in found], total


def read(*, runtime: ServiceRuntime, session: Session, principal: Principal,
         appointment_id: uuid.UUID) -> Appointment:
    appointment, referral = service.get_visible(session=session, principal=principal,
                                                appointment_id=appointment_id)
    runtime.audit(session, "appointment.read", participant_id=referral.participant_id,
                  owner_org=referral.from_org, record_id=appointment.id)
    return appointment
