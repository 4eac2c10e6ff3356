"""Endpoints for the other services only; the gateway does not route ``/internal/``.

Each route takes the service account of the one service it is for (``INTERNAL_POLICY`` in
``buendnis_common.policy``, enforced before the view runs). The owner organisation comes from the
participant's own record and is returned with the answer, never taken from the caller: the caller
compares it with what it knows (the signed-in person's organisation, the referral's sender), so a
query parameter cannot make intake act for, or record an access by, an organisation of the
caller's choosing."""
from __future__ import annotations

import uuid

from flask import Blueprint, request

from buendnis_common.errors import FieldError, NotFound, Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.timeutil import age_on, berlin_today
from intake.consent import service as consents
from intake.participant import service as participants
from intake.participant.models import Participant

blp = Blueprint("internal", __name__, url_prefix="/internal/participants")


def _required(name: str) -> str:
    value = request.args.get(name, "").strip()
    if not value:
        raise Unprocessable("request.param_required", name=name,
                            errors={name: [FieldError("request.missing")]})
    return value


def _participant(session, participant_id: uuid.UUID) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound("participant.not_found")
    return participant


@blp.get("/<uuid:participant_id>/sharing")
def sharing(participant_id: uuid.UUID):
    """May the participant's owner share them with ``recipient_org``, and what exactly?
    Only the categories of a valid consent are in the snapshot."""
    runtime = current_runtime()
    session = runtime.db.session
    recipient_org = _required("recipient_org")
    participant = _participant(session, participant_id)
    consent = consents.shared_with(runtime=runtime, session=session, participant=participant,
                                   recipient_org=recipient_org, today=berlin_today())
    body = {
        "participant_id": str(participant.id),
        "pseudonym": participant.pseudonym,
        "owner_org": participant.owner_org,
        "alliance": participant.alliance,
        "consent": None,
        "snapshot": {},
    }
    if consent is not None:
        body["consent"] = {
            "id": str(consent.id),
            "recipient_org": consent.recipient_org,
            "data_categories": list(consent.data_categories),
            "purpose": consent.purpose,
            "valid_until": consent.valid_until.isoformat(),
            "granted_at": consent.recorded_at.isoformat(),
        }
        body["snapshot"] = consents.snapshot(participant, list(consent.data_categories))
    return body


@blp.get("/<uuid:participant_id>/profile")
def profile(participant_id: uuid.UUID):
    """What the owner's offer matching needs: no names, no contact data."""
    runtime = current_runtime()
    session = runtime.db.session
    participant = participants.profile_read(runtime=runtime, session=session,
                                            participant_id=participant_id)
    return {
        "participant_id": str(participant.id),
        "pseudonym": participant.pseudonym,
        "owner_org": participant.owner_org,
        "residence_status": participant.residence_status,
        "age": age_on(participant.birth_date, berlin_today()),
        "languages": list(participant.languages or []),
        "open_needs": sorted({need.category for need in participant.needs
                              if need.status in ("open", "in_progress")}),
        "municipality": participant.municipality,
    }


@blp.get("/<uuid:participant_id>/contact")
def contact(participant_id: uuid.UUID):
    """How to reach the participant, fetched by notifications at send time and not kept there.

    Only while the participant's consent for the appointment's organisation (``recipient_org``)
    holds, checked now: without it (withdrawn, expired, none, or no ``recipient_org`` given) the
    answer says ``"consent": false`` and carries no name and no contact data."""
    runtime = current_runtime()
    session = runtime.db.session
    participant = _participant(session, participant_id)
    recipient_org = request.args.get("recipient_org", "").strip()
    consent = consents.contact_under_consent(
        runtime=runtime, session=session, participant=participant, recipient_org=recipient_org,
        today=berlin_today())
    body = {
        "participant_id": str(participant.id),
        "pseudonym": participant.pseudonym,
        "owner_org": participant.owner_org,
        "consent": consent is not None,
    }
    if consent is None:
        return body
    return {
        **body,
        "given_name": participant.given_name,
        "contact": participant.contact or {},
        "languages": list(participant.languages or []),
    }
