"""Referrals: sent and received, detail with status, history, messages and appointments."""
from __future__ import annotations

from flask import Blueprint

blp = Blueprint("referrals", __name__, url_prefix="/vermittlungen")


@blp.get("/")
def index():
    return "todo"


@blp.get("/neu")
def new():
    return "todo"


@blp.get("/<uuid:referral_id>")
def detail(referral_id):
    return "todo"
