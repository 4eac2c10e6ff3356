"""Endpoints for the other services only (service-account token, role ``service``)."""
from __future__ import annotations

import uuid

from flask import Blueprint

blp = Blueprint("internal", __name__, url_prefix="/internal/participants")


@blp.get("/<uuid:participant_id>/export")
def export(participant_id: uuid.UUID):
    """What notifications holds about the participant, for intake's Art. 15 export. Reminders and
    inbox entries are not built yet (issue 5), so today this service holds nothing about anyone;
    when they are, they are listed here."""
    return {"reminders": [], "deliveries": [], "inbox": []}
