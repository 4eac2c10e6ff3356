"""The link of an e-mail reminder: ``{WEB_URL}/termin/{token}`` (``buendnis_common.answers``)."""
from __future__ import annotations

import uuid
from datetime import datetime

from buendnis_common.answers import make_token
from notifications.config import AnswerSettings


def answer_link(settings: AnswerSettings, *, appointment_id: uuid.UUID, language: str,
                expires_at: datetime) -> str:
    token = make_token(settings.link_key, appointment_id=appointment_id, language=language,
                       expires_at=expires_at)
    return f"{settings.web_url}/termin/{token}"
