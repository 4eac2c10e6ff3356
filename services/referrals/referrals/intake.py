"""What referrals asks intake synchronously, over intake's internal endpoints.

The calls carry the service account's token; a connection failure, time-out or 5xx from intake
becomes a 503 (``ServiceUnavailable``) in ``ServiceClient``. Anything else intake answers that
does not fit the contract is treated the same way: we cannot decide on consent without an answer.

Intake answers for the participant's owner as its own record says (``owner_org`` in the answer);
whether that is the signed-in person's organisation is decided here, where the person's verified
token is, and a participant of another organisation is "not found" like any unknown id.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from buendnis_common.errors import ServiceUnavailable
from buendnis_common.service import ServiceRuntime
from referrals.codes import DATA_CATEGORIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consent:
    id: uuid.UUID
    recipient_org: str
    data_categories: tuple[str, ...]
    purpose: str | None


@dataclass(frozen=True)
class Sharing:
    """What the owner may share about a participant with one recipient, now."""

    participant_id: uuid.UUID
    pseudonym: str
    consent: Consent | None
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class Profile:
    """What the offer matching needs to know about a participant; no names."""

    participant_id: uuid.UUID
    residence_status: str | None
    age: int | None
    languages: tuple[str, ...]
    open_needs: tuple[str, ...]
    municipality: str | None


def _unexpected(what: str) -> ServiceUnavailable:
    return ServiceUnavailable("service.unusable_answer", service="intake", what=what)


def _get(runtime: ServiceRuntime, path: str, params: dict[str, str],
         owner_org: str) -> dict[str, Any] | None:
    """Intake's answer about a participant of ``owner_org``; ``None`` for anyone else's."""
    response = runtime.services.get("intake", path, params=params)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        log.warning("intake answered %s on %s", response.status_code, path.rsplit("/", 1)[-1])
        raise _unexpected(f"status {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _unexpected("not JSON") from None
    if not isinstance(body, dict):
        raise _unexpected("not an object")
    if "owner_org" not in body:
        raise _unexpected("no owner")
    if body["owner_org"] != owner_org:
        return None
    return body


def sharing(
    runtime: ServiceRuntime, *, participant_id: uuid.UUID, owner_org: str, recipient_org: str
) -> Sharing | None:
    """``None`` when the participant does not exist or is not ``owner_org``'s."""
    body = _get(
        runtime,
        f"/internal/participants/{participant_id}/sharing",
        {"recipient_org": recipient_org},
        owner_org,
    )
    if body is None:
        return None
    try:
        consent = body.get("consent")
        parsed = None
        if consent:
            parsed = Consent(
                id=uuid.UUID(str(consent["id"])),
                recipient_org=str(consent["recipient_org"]),
                data_categories=tuple(
                    c for c in consent.get("data_categories") or [] if c in DATA_CATEGORIES
                ),
                purpose=consent.get("purpose"),
            )
        snapshot = body.get("snapshot") or {}
        if not isinstance(snapshot, dict):
            raise TypeError("snapshot")
        return Sharing(
            participant_id=uuid.UUID(str(body["participant_id"])),
            pseudonym=str(body["pseudonym"]),
            consent=parsed,
            snapshot=snapshot,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _unexpected("sharing fields") from None


def profile(
    runtime: ServiceRuntime, *, participant_id: uuid.UUID, owner_org: str
) -> Profile | None:
    """``None`` when the participant does not exist or is not ``owner_org``'s."""
    body = _get(
        runtime, f"/internal/participants/{participant_id}/profile", {}, owner_org
    )
    if body is None:
        return None
    try:
        age = body.get("age")
        return Profile(
            participant_id=uuid.UUID(str(body["participant_id"])),
            residence_status=body.get("residence_status"),
            age=None if age is None else int(age),
            languages=tuple(str(code) for code in body.get("languages") or []),
            open_needs=tuple(str(code) for code in body.get("open_needs") or []),
            municipality=body.get("municipality"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _unexpected("profile fields") from None
