"""Participants: list and search, registration, detail with needs, consents and referrals, import."""
from __future__ import annotations

from flask import Blueprint

blp = Blueprint("participants", __name__, url_prefix="/teilnehmende")


@blp.get("/")
def index():
    return "todo"


@blp.get("/neu")
def new():
    return "todo"


@blp.get("/import")
def import_list():
    return "todo"


@blp.get("/<uuid:participant_id>")
def detail(participant_id):
    return "todo"
