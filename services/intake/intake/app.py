"""``create_app()``: the intake service."""
from __future__ import annotations

from flask import Flask

import intake.models  # noqa: F401 - every table mapped before the first query
from buendnis_common import context
from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import ServiceSettings
from intake.consent import handlers as consent_handlers
from intake.consent.views import blp as consents
from intake.db import MODELS
from intake.importer import service as import_service
from intake.importer.views import blp as imports
from intake.internal.consents import blp as internal_consents
from intake.internal.contacts import blp as internal_contacts
from intake.internal.views import blp as internal
from intake.participant import handlers as participant_handlers
from intake.participant.matching import duplicate_match_key
from intake.participant.views import blp as participants


def check_secrets() -> None:
    """Outside development, no start (server, worker, migration) without a real key."""
    duplicate_match_key()


def create_app(settings: ServiceSettings | None = None) -> Flask:
    check_secrets()
    runtime = ServiceRuntime(settings or ServiceSettings.from_env("intake"), models=MODELS)
    participant_handlers.register(runtime)
    import_service.register(runtime)
    consent_handlers.register(runtime)
    app, _api = runtime.create_app(
        __name__, title="Bündnis intake", blueprints=[imports, participants, consents]
    )
    app.register_blueprint(internal)  # not in the public API document
    app.register_blueprint(internal_consents)
    app.register_blueprint(internal_contacts)
    context.install(app, runtime)
    return app
