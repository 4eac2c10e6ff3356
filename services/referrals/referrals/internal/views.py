"""Intake's Art. 15 export asks referrals for everything it holds about a participant.

For intake's service account only (``INTERNAL_POLICY`` in ``buendnis_common.policy``); the
gateway does not route it and it stays out of the public API document. The owner organisation
comes from the referrals themselves (their sender), never from the caller.
"""
from __future__ import annotations

import uuid

from flask import Blueprint

from buendnis_common.service import current_runtime
from buendnis_common.web import current_principal
from referrals.internal import schemas
from referrals.referral import use_cases

blp = Blueprint("export", __name__, url_prefix="/internal/participants")


@blp.get("/<uuid:participant_id>/export")
def export(participant_id: uuid.UUID):
    """The owner's referrals of the participant with history, messages and appointments."""
    runtime = current_runtime()
    exported = use_cases.export_participant(runtime=runtime, session=runtime.db.session,
                                            principal=current_principal(),
                                            participant_id=participant_id)
    return schemas.Export().dump({"referrals": exported})
