"""The alliance's offer catalogue, and the own organisation's offers to edit."""
from __future__ import annotations

from flask import Blueprint

blp = Blueprint("offers", __name__, url_prefix="/angebote")


@blp.get("/")
def index():
    return "todo"


@blp.get("/neu")
def new():
    return "todo"


@blp.get("/<uuid:offer_id>")
def detail(offer_id):
    return "todo"


@blp.get("/<uuid:offer_id>/bearbeiten")
def edit(offer_id):
    return "todo"
