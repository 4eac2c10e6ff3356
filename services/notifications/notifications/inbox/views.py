"""The inbox API: what partners should know about their referrals and appointments, and which
kinds each user also gets by e-mail."""
from __future__ import annotations

import uuid
from datetime import datetime

import jwt
from flask import g, request
from flask.views import MethodView

from buendnis_common.db import utcnow
from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from notifications.inbox import schemas, service
from notifications.inbox.models import InboxEntry
from notifications.inbox.sending import describe

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="The inbox: what partners should know about their referrals and "
                "appointments.")


def text_language() -> str:
    """German, unless the caller prefers English (``Accept-Language``)."""
    return request.accept_languages.best_match(("de", "en"), default="de")


def view(entry: InboxEntry, read_at: datetime | None) -> dict:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "text": describe(entry, text_language()),
        "created_at": entry.created_at,
        "read": read_at is not None,
        "read_at": read_at,
        "addressed_to": "user" if entry.recipient_user else "organization",
        "organization": entry.recipient_org,
        "referral_id": entry.referral_id,
        "appointment_id": entry.appointment_id,
        "reminder_id": entry.reminder_id,
        "data": entry.data or {},
    }


def remember_caller() -> None:
    """Keep the caller's e-mail address, organisation and roles from their (verified) token,
    so that e-mail copies of their inbox reach them."""
    principal = getattr(g, "principal", None)
    if principal is None or not request.path.startswith("/api/"):
        return
    claims = jwt.decode(g.access_token, options={"verify_signature": False})
    email = claims.get("email") if claims.get("email_verified", True) else None
    service.remember(session=current_runtime().db.session, principal=principal, email=email,
                     now=utcnow())


@blp.route("")
class Notifications(MethodView):
    @blp.arguments(schemas.NotificationQuery, location="query")
    @blp.response(200, schemas.Notification(many=True))
    @blp.paginate(page_size=25, max_page_size=100)
    def get(self, query, pagination_parameters):
        """The caller's inbox, newest first: entries addressed to them and, for case workers,
        to their organisation."""
        session = current_runtime().db.session
        rows, total = service.list_for(
            session=session, principal=current_principal(), unread=query.get("unread"),
            kind=query.get("kind"), offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return [view(entry, read_at) for entry, read_at in rows]


@blp.route("/<uuid:entry_id>/read")
class NotificationRead(MethodView):
    @blp.response(200, schemas.Notification)
    def post(self, entry_id: uuid.UUID):
        """Mark an entry read (for the caller; an organisation's entry stays unread for its
        other case workers)."""
        session = current_runtime().db.session
        entry, read_at = service.mark_read(session=session, principal=current_principal(),
                                           entry_id=entry_id, now=utcnow())
        return view(entry, read_at)


@blp.route("/preferences")
class NotificationPreferences(MethodView):
    @blp.response(200, schemas.Preferences)
    def get(self):
        """Which kinds of entries the caller also gets by e-mail."""
        session = current_runtime().db.session
        chosen = service.preferences(session=session, principal=current_principal())
        return {"email_copies": chosen}

    @blp.arguments(schemas.Preferences)
    @blp.response(200, schemas.Preferences)
    def put(self, data):
        """Switch e-mail copies on or off per kind; a kind left out is on."""
        session = current_runtime().db.session
        chosen = service.set_preferences(session=session, principal=current_principal(),
                                         email_copies=data["email_copies"])
        return {"email_copies": chosen}
