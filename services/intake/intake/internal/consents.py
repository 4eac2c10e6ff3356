"""Whether consents hold now, for the services that use data under them (service accounts
only, see ``INTERNAL_POLICY``). The answers carry ids, codes and dates, no personal data.

Consent is checked at the moment of use, not only when a referral is made: referrals asks
before it shows a receiver the shared data (and once more after it stored a new referral, so
that a withdrawal racing the referral's creation leaves nothing behind), notifications before
it shows a receiver how a reminder went to the participant.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, request

from buendnis_common.errors import FieldError, Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.timeutil import berlin_today
from intake.consent import service as consents
from intake.participant.models import Participant

blp = Blueprint("internal_consents", __name__, url_prefix="/internal/consents")

MAX_IDS = 500


def _uuid(value, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise Unprocessable("request.id_invalid", name=name,
                            errors={name: [FieldError("request.not_an_id")]}) from None


@blp.post("/status")
def status():
    """``{"consent_ids": [...]}`` → for each id whether it holds today and, if not, why
    (``withdrawn``, ``expired``, ``unknown``)."""
    body = request.get_json(silent=True)
    ids = body.get("consent_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or len(ids) > MAX_IDS:
        raise Unprocessable("request.id_list", name="consent_ids", max=MAX_IDS,
                            errors={"consent_ids": [FieldError("request.a_list_of_ids")]})
    consent_ids = list(dict.fromkeys(_uuid(value, "consent_ids") for value in ids))
    session = current_runtime().db.session
    answer = consents.status_of(session=session, consent_ids=consent_ids,
                                today=berlin_today())
    return {"consents": answer}


@blp.get("/current")
def current():
    """Does the participant's valid consent for ``recipient_org`` exist now, and which
    categories does it cover?"""
    participant_id = _uuid(request.args.get("participant_id"), "participant_id")
    recipient_org = (request.args.get("recipient_org") or "").strip()
    if not recipient_org:
        raise Unprocessable("request.param_required", name="recipient_org",
                            errors={"recipient_org": [FieldError("request.missing")]})
    session = current_runtime().db.session
    participant = session.get(Participant, participant_id)
    consent = None if participant is None else consents.valid_consent(
        session=session, participant=participant, recipient_org=recipient_org,
        today=berlin_today())
    if consent is None:
        return {"valid": False, "consent_id": None, "data_categories": [], "valid_until": None}
    return {"valid": True, "consent_id": str(consent.id),
            "data_categories": list(consent.data_categories),
            "valid_until": consent.valid_until.isoformat()}
