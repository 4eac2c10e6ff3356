"""What the referrals views need besides the runtime: organisations, settings, calendar."""
from __future__ import annotations

from flask import current_app

from referrals.referral.service import Context


def current_context() -> Context:
    return current_app.extensions["referrals"]
