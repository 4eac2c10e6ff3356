"""``create_app()``: the referrals service."""
from __future__ import annotations

from flask import Flask

from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import ServiceSettings
from referrals.db import MODELS
from referrals.erasure.tasks import handlers as erasure_handlers


def create_app(settings: ServiceSettings | None = None) -> Flask:
    runtime = ServiceRuntime(
        settings or ServiceSettings.from_env("referrals"),
        models=MODELS,
        handlers=erasure_handlers,
    )
    app, _api = runtime.create_app(__name__, title="Bündnis referrals", blueprints=[])
    return app
