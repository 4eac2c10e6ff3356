"""``create_app()``: the referrals service."""
from __future__ import annotations

from functools import partial

from flask import Flask, jsonify
from sqlalchemy.orm.exc import StaleDataError

from buendnis_common import context
from buendnis_common.answers import link_key
from buendnis_common.errors import error_body
from buendnis_common.service import EventHandlers, ServiceRuntime
from buendnis_common.settings import ServiceSettings
from referrals.answer import service as answers
from referrals.answer.views import blp as answer_links
from referrals.appointment.views import blp as appointments
from referrals.config import ReferralsConfig
from referrals.db import MODELS
from referrals.erasure.handlers import on_participant_erased
from referrals.hsds.views import blp as hsds
from referrals.internal.views import blp as export
from referrals.offer.views import blp as offers
from referrals.referral import handlers as referral_handlers
from referrals.referral.views import blp as referrals
from referrals.report import handlers as report_handlers
from referrals.report.service import ReportSettings
from referrals.report.views import blp as reports


def _changed_meanwhile(_error: StaleDataError):
    # Two changes of the same record at once: the second one's version check failed.
    body = error_body(409, error_code="service.write_conflict")
    return jsonify(body), 409


def create_app(
    settings: ServiceSettings | None = None, config: ReferralsConfig | None = None
) -> Flask:
    config = config or ReferralsConfig.from_env()
    link_key()  # ANSWER_LINK_KEY: outside development a real key, or no start
    handlers = EventHandlers({**referral_handlers.handlers.handlers,
                              **report_handlers.handlers.handlers})
    runtime = ServiceRuntime(
        settings or ServiceSettings.from_env("referrals"), models=MODELS, handlers=handlers
    )
    referral_handlers.register(runtime, interval_seconds=config.overdue_sweep_seconds)
    runtime.consumer.handles("answer.received")(partial(answers.on_answer_received, runtime))
    runtime.consumer.handles("participant.erased")(partial(on_participant_erased, runtime))
    app, _api = runtime.create_app(
        __name__,
        title="Bündnis referrals",
        blueprints=[offers, referrals, appointments, reports],
    )
    app.register_blueprint(export)  # internal: not in the public API document
    app.register_blueprint(answer_links)  # public: the signed link is the credential
    app.register_blueprint(hsds)  # public, without a token: HSDS has its own API document
    context.install(app, runtime, config)
    app.extensions["reports"] = ReportSettings.from_env()
    app.register_error_handler(StaleDataError, _changed_meanwhile)
    return app
