"""Reports for the core group, coordinators and the ministry: tables, charts, downloads."""
from __future__ import annotations

from flask import Blueprint

blp = Blueprint("reports", __name__, url_prefix="/berichte")


@blp.get("/")
def index():
    return "todo"
