"""The start page: the inbox and the next appointments."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import api
from ..auth import has_role

blp = Blueprint("home", __name__)


@blp.get("/")
def index():
    unread_only = request.args.get("ungelesen") == "1"
    inbox = api.get("/api/v1/notifications", page=request.args.get("page", 1), page_size=20,
                    unread="true" if unread_only else None)
    appointments = None
    if has_role("case_worker"):
        appointments = api.get("/api/v1/appointments", status="booked", page_size=10).body
    return render_template(
        "home/index.html",
        entries=inbox.body,
        pagination=inbox.pagination,
        unread_only=unread_only,
        appointments=appointments,
    )


@blp.post("/eingang/<uuid:entry_id>/gelesen")
def mark_read(entry_id):
    api.post(f"/api/v1/notifications/{entry_id}/read")
    flash(_("Als gelesen markiert."), "success")
    return redirect(request.form.get("next") or url_for("home.index"))
