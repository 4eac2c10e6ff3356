"""``create_app()``: the intake service."""
from __future__ import annotations

from flask import Flask

from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import ServiceSettings
from intake.db import MODELS
from intake.participant.views import blp as participants


def create_app(settings: ServiceSettings | None = None) -> Flask:
    runtime = ServiceRuntime(settings or ServiceSettings.from_env("intake"), models=MODELS)
    app, _api = runtime.create_app(
        __name__, title="Bündnis intake", blueprints=[participants]
    )
    return app
