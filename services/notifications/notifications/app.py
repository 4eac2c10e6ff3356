"""``create_app()``: the notifications service."""
from __future__ import annotations

from flask import Flask

import notifications.models  # noqa: F401 - every table mapped before the first query
from buendnis_common import context
from buendnis_common.service import EventHandlers, ServiceRuntime
from buendnis_common.settings import ServiceSettings
from notifications.answer.handlers import handlers as answer_handlers
from notifications.answer.views import blp as sms_webhook
from notifications.appointment.handlers import handlers as appointment_handlers
from notifications.config import NotificationsConfig
from notifications.db import MODELS
from notifications.inbox.handlers import handlers as inbox_handlers
from notifications.inbox.views import blp as inbox
from notifications.inbox.views import remember_caller
from notifications.internal.views import blp as internal
from notifications.reminder import handlers as reminder_handlers
from notifications.reminder.views import blp as reminders


def create_app(
    settings: ServiceSettings | None = None, config: NotificationsConfig | None = None
) -> Flask:
    config = config or NotificationsConfig.from_env()
    handlers = EventHandlers({**appointment_handlers.handlers, **inbox_handlers.handlers,
                              **answer_handlers.handlers})
    runtime = ServiceRuntime(
        settings or ServiceSettings.from_env("notifications"), models=MODELS, handlers=handlers
    )
    reminder_handlers.register(runtime, config)
    app, _api = runtime.create_app(
        __name__, title="Bündnis notifications", blueprints=[inbox, reminders]
    )
    app.register_blueprint(internal)  # not in the public API document
    app.register_blueprint(sms_webhook)  # public, but only with the SMS provider's signature
    app.before_request(remember_caller)
    context.install(app, runtime, config)
    return app
