"""Intake's Art. 15 export asks referrals for everything it holds about a participant.

For Bündnis services only (``install_auth`` requires role ``service`` on ``/internal/``); the
gateway does not route it and it stays out of the public API document.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, request

from buendnis_common.errors import Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.web import current_principal
from referrals.appointment import service as appointments
from referrals.export import schemas
from referrals.referral import service as referrals

blp = Blueprint("export", __name__, url_prefix="/internal/participants")


@blp.get("/<uuid:participant_id>/export")
def export(participant_id: uuid.UUID):
    """The owner's referrals of the participant with history, messages and appointments."""
    owner_org = request.args.get("owner_org", "").strip()
    if not owner_org:
        raise Unprocessable("owner_org is required.", errors={"owner_org": ["Missing."]})
    runtime = current_runtime()
    session = runtime.db.session
    exported = []
    for referral in referrals.of_participant(session=session, participant_id=participant_id,
                                             owner_org=owner_org):
        exported.append({
            **referrals.view_for(referral, "sender"),
            "history": referral.history,
            "messages": referrals.messages(session=session, referral=referral),
            "appointments": appointments.of_referral(session=session, referral=referral),
        })
        runtime.audit(session, "referral.export", participant_id=participant_id,
                      record_id=referral.id, actor=current_principal().username,
                      actor_org=owner_org)
    session.commit()
    return schemas.Export().dump({"referrals": exported})
