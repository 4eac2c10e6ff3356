"""The link in an e-mail reminder with which a participant answers without signing in.

``{WEB_URL}/termin/{token}``: the token is signed with ``ANSWER_LINK_KEY`` (itsdangerous, HMAC),
names one appointment, the language of the page and the moment the link expires (the
appointment's end). Nothing else: no name, no address, no other appointment. The notifications
service makes it when it writes the reminder; the referrals service, which owns the
appointment, checks it when the page is opened or an answer is sent.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

from .settings import env_secret

SALT = "buendnis.appointment-answer.v1"
DEMO_KEY = "demo-answer-link-key-change-me"
CONFIRMED = "confirmed"
CANCEL_REQUESTED = "cancel_requested"
RESPONSES = (CONFIRMED, CANCEL_REQUESTED)


def link_key() -> str:
    """``ANSWER_LINK_KEY``: refused in production when unset or a demo value."""
    return env_secret("ANSWER_LINK_KEY", DEMO_KEY)


class InvalidToken(Exception):
    """Not signed with our key, or not a token at all."""


@dataclass(frozen=True)
class LinkToken:
    appointment_id: uuid.UUID
    language: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT)


def make_token(key: str, *, appointment_id: uuid.UUID, language: str,
               expires_at: datetime) -> str:
    return _serializer(key).dumps(
        [appointment_id.hex, language[:8], int(expires_at.timestamp())])


def read_token(key: str, token: str) -> LinkToken:
    try:
        appointment, language, expires = _serializer(key).loads(token)
        return LinkToken(uuid.UUID(hex=str(appointment)), str(language)[:8],
                         datetime.fromtimestamp(int(expires), UTC))
    except (BadSignature, ValueError, TypeError):
        raise InvalidToken from None
