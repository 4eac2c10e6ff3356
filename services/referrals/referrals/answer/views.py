"""The page behind an e-mail reminder's link, as data for the web front end: public (no token),
the signed link is the only credential (``buendnis_common.answers``).

``GET /answers/<token>`` → the appointment's time, mode and place and the answers still open;
``POST /answers/<token>`` with ``{"response": "confirmed" | "cancel_requested"}``. The link
names one appointment and expires when it ends; each answer works once (a replay: 409 with the
answer given). Nothing else is shown: no names, no other appointments.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from buendnis_common import directory
from buendnis_common.answers import RESPONSES, InvalidToken, link_key, read_token
from buendnis_common.db import utcnow
from buendnis_common.errors import FieldError, NotFound, Unprocessable
from buendnis_common.service import current_runtime
from referrals.answer import service
from referrals.appointment.models import AnswerLinkUse, Appointment
from referrals.referral.models import Referral

blp = Blueprint("answers", __name__)


def _load(token: str):
    try:
        link = read_token(link_key(), token)
    except InvalidToken:
        raise NotFound("answer.link_invalid") from None
    session = current_runtime().db.session
    appointment = session.get(Appointment, link.appointment_id)
    if appointment is None:
        raise NotFound("answer.link_invalid")
    return session, link, appointment


def _view(session, link, appointment, *, state: str) -> dict:
    referral = session.get(Referral, appointment.referral_id)
    organization = directory.organization(referral.to_org) if referral else None
    used = sorted(session.scalars(
        select(AnswerLinkUse.response).where(AnswerLinkUse.appointment_id == appointment.id)))
    return {
        "state": state,
        "language": link.language,
        "appointment": {
            "start": appointment.start.isoformat(), "end": appointment.end.isoformat(),
            "mode": appointment.mode, "location": appointment.location,
            "organization": organization.name if organization else None,
        },
        "participant_response": appointment.participant_response,
        "answered": used,
    }


def _state(link, appointment, now) -> str:
    if link.expired(now) or now >= appointment.end:
        return "expired"
    if not service.is_open(appointment, now):
        return "closed"
    return "open"


@blp.get("/answers/<token>")
def show(token: str):
    session, link, appointment = _load(token)
    state = _state(link, appointment, utcnow())
    body = _view(session, link, appointment, state=state) if state == "open" else {
        "state": state, "language": link.language}
    response = jsonify(body)
    response.status_code = 200 if state == "open" else 410
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.post("/answers/<token>")
def answer(token: str):
    body = request.get_json(silent=True) or {}
    response_code = body.get("response")
    if response_code not in RESPONSES:
        raise Unprocessable("answer.response_invalid",
                            errors={"response": [FieldError("answer.choose_response")]})
    session, link, appointment = _load(token)
    now = utcnow()
    state = _state(link, appointment, now)
    if state != "open":
        return jsonify({"state": state, "language": link.language}), 410
    if not service.answer_by_link(current_runtime(), session, appointment=appointment,
                                  response=response_code, at=now):
        result = _view(session, link, appointment, state="already_answered")
        return jsonify({**result, "response": response_code}), 409
    result = _view(session, link, appointment, state="answered")
    return jsonify({**result, "response": response_code}), 200
