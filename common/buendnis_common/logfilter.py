"""Keeps personal data out of every log line, whatever logs it and at whatever level.

Names, numbers and addresses reach logs by a few mechanisms rather than by single calls: a database
error's text (SQLAlchemy appends ``[parameters: …]``; PostgreSQL's ``DETAIL: Key (…)=(…)`` and
``invalid input syntax for type …: "…"`` quote the values), Celery's task records (arguments and
return values), and URLs with query strings (``?q=<name>`` in urllib3's and werkzeug's debug
lines). :class:`PersonalDataFilter`, installed on the handlers by
:func:`buendnis_common.web.configure_logging`, rewrites each record before it is formatted; the
engines are created with ``hide_parameters=True`` and SQLAlchemy's own loggers are held at
WARNING, so no statement is ever echoed with its values.
"""
from __future__ import annotations

import logging
import re
import traceback

HIDDEN = "[hidden]"

_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\(Background)", re.DOTALL)
_URL_QUERY = re.compile(
    r"((?:https?://[^\s\"'?]*|\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[^\s\"'?]*))"
    r"\?[^\s\"']*"
)

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # SQLAlchemy's statement errors: "[parameters: (...)]" (hide_parameters covers new engines;
    # this covers any other, and the text of chained exceptions).
    (_PARAMETERS, f"[parameters: {HIDDEN}]"),
    # PostgreSQL's detail line quotes the row or the key's values.
    (re.compile(r"DETAIL:.*?(?=\n\S|\n\[SQL|\n\(Background|$)", re.DOTALL), f"DETAIL: {HIDDEN}"),
    # PostgreSQL quotes the offending input in type errors.
    (re.compile(r'(invalid input (?:syntax )?(?:value )?for (?:type )?[\w ]+?): ".*?"'),
     rf'\1: "{HIDDEN}"'),
    (re.compile(r'(value too long for type [\w ()]+?): ".*?"'), rf'\1: "{HIDDEN}"'),
    # Query strings of any URL or request line ("GET /api/v1/participants?q=Name HTTP/1.1").
    (_URL_QUERY, rf"\1?{HIDDEN}"),
)

# Celery's task records pass their values as a dict of arguments.
_CELERY_VALUES = ("args", "kwargs", "return_value", "argsrepr", "kwargsrepr")


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class PersonalDataFilter(logging.Filter):
    """Rewrites a record's message, arguments and exception text before any formatter runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {
                key: (HIDDEN if key in _CELERY_VALUES else value)
                for key, value in record.args.items()
            }
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record keeps its raw text, redacted
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_text = redact(formatted)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def quiet_sql_loggers() -> None:
    """SQLAlchemy logs statements with their values at INFO: never above WARNING here."""
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm"):
        logging.getLogger(name).setLevel(logging.WARNING)


def install(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(PersonalDataFilter())
