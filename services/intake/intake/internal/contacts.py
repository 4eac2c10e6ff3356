"""How to reach many participants at once, for the notifications service's dispatcher only
(``INTERNAL_POLICY``): the batch form of ``/internal/participants/<id>/contact``.

When a whole district's reminders fall due in the same minute, one request per reminder was
the dispatcher's slowest step. This route answers up to ``MAX_PAIRS`` of them in one request and
two queries, and decides for each person exactly as the single route does: only while the
participant's consent for the appointment's organisation holds *now* (not withdrawn, not past
its last day) does the answer carry a name and contact data; otherwise it says
``"consent": false`` and nothing else about the person. The ids travel in the body, never in
the URL. The owner organisation comes from intake's record, for the caller to compare with the
referral's sender, as with the single route; an id intake does not know is left out.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, g, request
from sqlalchemy import select

from buendnis_common.errors import Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.timeutil import berlin_today
from intake.consent.models import Consent
from intake.participant.models import Participant

blp = Blueprint("internal_contacts", __name__, url_prefix="/internal/participants")

MAX_PAIRS = 500


def valid_consents(session, pairs: list[tuple[uuid.UUID, str]],
                   today) -> dict[tuple[uuid.UUID, str], Consent]:
    """``consent.service.valid_consent`` for many (participant, recipient organisation) pairs
    in one query: the newest consent of each pair that is not withdrawn and not past its last
    day."""
    if not pairs:
        return {}
    wanted = set(pairs)
    found: dict[tuple[uuid.UUID, str], Consent] = {}
    rows = session.scalars(
        select(Consent)
        .where(Consent.participant_id.in_({pid for pid, _org in wanted}),
               Consent.recipient_org.in_({org for _pid, org in wanted}),
               Consent.withdrawn_at.is_(None), Consent.valid_until >= today)
        .order_by(Consent.recorded_at.desc())
    )
    for consent in rows:
        key = (consent.participant_id, consent.recipient_org)
        if key in wanted and key not in found:
            found[key] = consent
    return found


def _invalid() -> Unprocessable:
    return Unprocessable("contact.batch_invalid", field="participants", max=MAX_PAIRS)


def _pairs(body) -> list[tuple[uuid.UUID, str]]:
    items = body.get("participants") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) > MAX_PAIRS:
        raise _invalid()
    pairs = []
    for item in items:
        try:
            pid = uuid.UUID(str(item["participant_id"]))
            org = str(item["recipient_org"]).strip()
        except (TypeError, KeyError, ValueError):
            raise _invalid() from None
        if not org:
            raise _invalid()
        pairs.append((pid, org))
    return list(dict.fromkeys(pairs))


@blp.post("/contacts")
def contacts():
    """``{"participants": [{"participant_id", "recipient_org"}, ...]}`` → one answer per pair
    whose participant exists, in the shape of the single route's answer (with
    ``recipient_org``)."""
    pairs = _pairs(request.get_json(silent=True))
    runtime = current_runtime()
    session = runtime.db.session
    participants = {
        participant.id: participant for participant in session.scalars(
            select(Participant).where(Participant.id.in_({pid for pid, _org in pairs})))
    } if pairs else {}
    known = [(pid, org) for pid, org in pairs if pid in participants]
    valid = valid_consents(session, known, berlin_today())
    answers = []
    reached: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = {}
    for pid, org in known:
        participant = participants[pid]
        answer = {"participant_id": str(pid), "recipient_org": org,
                  "owner_org": participant.owner_org, "consent": (pid, org) in valid}
        if answer["consent"]:
            answer.update(given_name=participant.given_name,
                          contact=participant.contact or {},
                          languages=list(participant.languages or []))
            reached.setdefault(participant.owner_org, []).append((pid, valid[(pid, org)].id))
        answers.append(answer)
    # One audit entry per person reached under which consent, as the single route writes
    # (``consent.service.contact_under_consent``), in one statement per owner; committed with
    # the request's unit of work.
    principal = getattr(g, "principal", None)
    for owner_org, entries in reached.items():
        runtime.audit_many(session, "participant.contact", [pid for pid, _c in entries],
                           record_ids=[consent_id for _p, consent_id in entries],
                           actor=principal.username if principal else "notifications",
                           actor_org=owner_org)
    return {"participants": answers}
