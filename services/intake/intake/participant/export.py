"""Art. 15: everything the platform holds about one person, from every service."""
from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.errors import ServiceUnavailable
from buendnis_common.service import ServiceRuntime
from intake.consent import schemas as consent_schemas
from intake.participant import schemas
from intake.participant import service as participants
from intake.participant.models import Participant

# The services that hold something about a participant, each behind an internal endpoint.
HOLDERS = ("referrals", "notifications")


def gather(*, runtime: ServiceRuntime, session: Session, participant: Participant) -> dict:
    audit_model = runtime.models.audit_entry
    entries = session.scalars(
        select(audit_model)
        .where(audit_model.participant_id == participant.id)
        .order_by(audit_model.seq)
    ).all()
    document = {
        "participant": schemas.Participant().dump(participant),
        "consents": consent_schemas.Consent(many=True).dump(participant.consents),
        "access_log": [
            {"at": entry.at.isoformat(), "organization": entry.actor_org,
             "action": entry.action}
            for entry in entries
        ],
    }
    for service in HOLDERS:
        response = runtime.services.get(
            service, f"/internal/participants/{participant.id}/export",
        )
        if response.status_code != 200:
            raise ServiceUnavailable("export.part_unavailable", service=service)
        document[service] = response.json()
    return document


def for_caller(*, runtime: ServiceRuntime, session: Session, principal: Principal,
               participant_id: uuid.UUID) -> dict:
    """The export of the caller's own participant, audited (after it is gathered: the access
    log it shows ends before this read)."""
    participant = participants.get(session=session, principal=principal,
                                   participant_id=participant_id)
    document = gather(runtime=runtime, session=session, participant=participant)
    runtime.audit(session, "participant.export", participant_id=participant.id)
    return document
