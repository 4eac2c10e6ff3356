"""``create_app()``: the notifications service."""
from __future__ import annotations

from flask import Flask

from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import ServiceSettings
from notifications.db import MODELS
from notifications.internal.views import blp as internal


def create_app(settings: ServiceSettings | None = None) -> Flask:
    runtime = ServiceRuntime(settings or ServiceSettings.from_env("notifications"), models=MODELS)
    app, _api = runtime.create_app(__name__, title="Bündnis notifications", blueprints=[])
    app.register_blueprint(internal)  # not in the public API document
    return app
