"""How every process writes its log lines: one JSON object per line (python-json-logger) by
default, or the readable text lines of ``LOG_FORMAT=text`` (what ``make run`` uses).

Each JSON line has ``time``, ``level``, ``logger``, ``message``, the process's ``role``
(``referrals-worker``, ``gateway-web``), the ``request_id`` (``X-Request-ID``, also passed to the
services a request reaches) and the OpenTelemetry ``trace_id`` where a trace is active, so one
request can be followed across processes. Nothing else: whatever a library attaches to a record
(Celery puts a task's arguments and return value in ``record.data``) is left out, and the
personal-data filter (``logfilter``) has rewritten message and exception text before this runs;
the exception text is taken from that rewritten copy, never formatted again from the exception.
"""
from __future__ import annotations

import logging
import os
import re
import sys

from pythonjsonlogger.json import JsonFormatter

from . import logfilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
FIELDS = ("time", "level", "logger", "message", "role", "request_id", "trace_id", "exc_info",
          "stack_info")


def log_format() -> str:
    return "text" if os.environ.get("LOG_FORMAT", "json").strip().lower() == "text" else "json"


def process_role() -> str:
    """``<component>-<web|worker|beat>``, from ``BUENDNIS_ROLE``, else from the command line."""
    if os.environ.get("BUENDNIS_ROLE"):
        return os.environ["BUENDNIS_ROLE"]
    argv = " ".join(sys.argv)
    found = re.search(r"\b(intake|referrals|notifications|gateway|web)\.(app|worker)\b", argv)
    component = os.environ.get("BUENDNIS_COMPONENT") or (found.group(1) if found else "")
    if not component:
        return os.path.basename(sys.argv[0] or "python")
    kind = "beat" if " beat" in argv else "worker" if " worker" in argv else "web"
    return f"{component}-{kind}"


def current_trace_id() -> str:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - tracing is installed with the platform
        return "-"
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else "-"


class ContextFilter(logging.Filter):
    """Role and trace id on every record (the request id comes from ``web.RequestIdFilter``)."""

    def __init__(self) -> None:
        super().__init__()
        self.role = process_role()

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        record.trace_id = current_trace_id()
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return True


class PlatformJsonFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in ("role", "request_id", "trace_id"):
            log_data[key] = getattr(record, key, "-")
        if record.exc_info or record.exc_text:
            log_data["exc_info"] = logfilter.redact(record.exc_text or str(log_data.get(
                "exc_info", "")))
        for key in list(log_data):
            if key not in FIELDS:
                del log_data[key]
        log_data["message"] = logfilter.redact(str(log_data.get("message", "")))


def formatter() -> logging.Formatter:
    return (logging.Formatter(TEXT_FORMAT) if log_format() == "text"
            else PlatformJsonFormatter())


def apply(handlers: list[logging.Handler]) -> None:
    """The chosen format and the context on ``handlers``; gunicorn's access lines keep their
    own fields (method, path without query, status) as the message."""
    for handler in handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        handler.setFormatter(formatter())
