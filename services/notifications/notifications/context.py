"""What the notifications views and tasks need besides the runtime: their settings."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from buendnis_common.service import ServiceRuntime
from notifications.config import NotificationsConfig


@dataclass(frozen=True)
class Context:
    runtime: ServiceRuntime
    config: NotificationsConfig


def current_context() -> Context:
    return current_app.extensions["notifications"]
