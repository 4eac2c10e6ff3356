"""How to reach a participant, asked from intake at the moment of sending and kept nowhere."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from buendnis_common.errors import ServiceUnavailable
from buendnis_common.service import ServiceRuntime
from notifications.delivery.channels import TemporaryFailure


@dataclass(frozen=True)
class Contact:
    given_name: str | None
    phone: str | None
    email: str | None
    preferred_channel: str | None
    language: str | None
    languages: tuple[str, ...]

    @property
    def channel(self) -> str:
        """The channel the participant chose; with no choice recorded, e-mail if there is an
        address, else SMS if there is a number, else none."""
        if self.preferred_channel in ("sms", "email", "none"):
            return self.preferred_channel
        if self.email:
            return "email"
        if self.phone:
            return "sms"
        return "none"


class NoConsent(Exception):
    """The participant's consent for the appointment's organisation does not hold now
    (withdrawn, expired, never given): intake gave no contact data, nothing may be sent."""


# The batch route's limit (intake's ``internal.contacts.MAX_PAIRS``).
BATCH = 500


def _contact(body: dict) -> Contact:
    contact = body.get("contact") or {}
    return Contact(
        given_name=body.get("given_name"),
        phone=contact.get("phone"),
        email=contact.get("email"),
        preferred_channel=contact.get("preferred_channel"),
        language=contact.get("language"),
        languages=tuple(str(code) for code in body.get("languages") or []),
    )


Wanted = tuple[uuid.UUID, str, str]  # participant, owner organisation, recipient organisation


def fetch_many(runtime: ServiceRuntime, wanted: list[Wanted],
               ) -> dict[Wanted, Contact | NoConsent | None]:
    """``fetch`` for many participants, ``BATCH`` per request to intake's batch route, the ids
    in the body. For each: the contact, ``NoConsent`` (an instance) or ``None`` (not a
    participant of that owner). A failed request fails the whole batch (``TemporaryFailure``)."""
    found: dict[Wanted, Contact | NoConsent | None] = {}
    pairs = list(dict.fromkeys((pid, recipient) for pid, _owner, recipient in wanted))
    answers: dict[tuple[str, str], dict] = {}
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start:start + BATCH]
        try:
            response = runtime.services.request(
                "intake", "POST", "/internal/participants/contacts",
                json={"participants": [{"participant_id": str(pid), "recipient_org": org}
                                       for pid, org in chunk]})
        except ServiceUnavailable:
            raise TemporaryFailure("intake_unavailable") from None
        if response.status_code != 200:
            raise TemporaryFailure(f"intake_{response.status_code}")
        try:
            for body in response.json()["participants"]:
                answers[(str(uuid.UUID(body["participant_id"])), body["recipient_org"])] = body
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TemporaryFailure("intake_unusable_answer") from None
    for item in wanted:
        pid, owner_org, recipient_org = item
        body = answers.get((str(pid), recipient_org))
        try:
            if body is None or body.get("owner_org") != owner_org:
                found[item] = None
            elif body.get("consent") is not True:
                found[item] = NoConsent()
            else:
                found[item] = _contact(body)
        except (ValueError, AttributeError, TypeError):
            raise TemporaryFailure("intake_unusable_answer") from None
    return found


def fetch(runtime: ServiceRuntime, *, participant_id: uuid.UUID, owner_org: str,
          recipient_org: str) -> Contact | None:
    """``None`` when intake has no such participant of ``owner_org`` (erased, or never was).
    Intake says whose participant it is from its own record; a participant of another
    organisation than the referral's sender is nobody this reminder may reach."""
    try:
        response = runtime.services.get(
            "intake", f"/internal/participants/{participant_id}/contact",
            params={"recipient_org": recipient_org},
        )
    except ServiceUnavailable:
        raise TemporaryFailure("intake_unavailable") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise TemporaryFailure(f"intake_{response.status_code}")
    try:
        body = response.json()
        if body.get("owner_org") != owner_org:
            return None
        if body.get("consent") is not True:
            raise NoConsent
        return _contact(body)
    except (ValueError, AttributeError, TypeError):
        raise TemporaryFailure("intake_unusable_answer") from None
