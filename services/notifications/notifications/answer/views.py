"""``POST /webhooks/sms/inbound``: the SMS provider posts a participant's reply.

Public in the role policy (no token) and served through the gateway, but trusted only with the
provider's signature, which this service checks itself whatever the gateway did. Anything
unsigned or wrongly signed: 403, a log line with the reason (never the number or the text) and
an audit entry ``sms_webhook.refused``. The answer to the provider is TwiML: the
acknowledgement it sends back to the participant, in their language.
"""
from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from buendnis_common.context import current_context
from buendnis_common.db import utcnow
from buendnis_common.errors import BadRequest, Forbidden
from buendnis_common.service import current_runtime
from notifications.answer import service, signature

log = logging.getLogger(__name__)

blp = Blueprint("sms_webhook", __name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


def _twiml(text: str | None) -> Response:
    inner = f"<Message>{escape(text)}</Message>" if text else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    response = Response(body, status=200, mimetype="application/xml")
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.post("/webhooks/sms/inbound")
def inbound():
    settings = current_context().config.answers
    runtime = current_runtime()
    fields = [(name, value) for name in request.form for value in request.form.getlist(name)]
    given = request.headers.get(SIGNATURE_HEADER)
    if not signature.valid(settings.webhook_secret, settings.webhook_url, fields, given):
        reason = "signature_missing" if not given else "signature_wrong"
        log.warning("SMS webhook refused: %s", reason)
        service.record_refusal(runtime, reason)
        raise Forbidden("answer.sms_unsigned")
    sid = (request.form.get("MessageSid") or "").strip()
    number = request.form.get("From") or ""
    if not sid or len(sid) > 64 or not number:
        raise BadRequest("answer.sms_fields_required")
    outcome = service.receive(runtime, runtime.db.session, key=settings.link_key, sid=sid,
                              number=number, body=request.form.get("Body") or "", now=utcnow())
    return _twiml(outcome.acknowledgement())
