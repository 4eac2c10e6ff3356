"""Exceptions that carry their HTTP status, and the one handler that turns every error into
API.md's body: ``{"code": 422, "status": "Unprocessable Entity", "message": "…", "errors": {…}}``.
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# webargs reports field errors per location ({"json": {"birth_date": [...]}}); clients want the
# field names themselves under "errors".
_LOCATIONS = {"json", "query", "querystring", "form", "files", "headers", "view_args", "path"}


class DomainError(Exception):
    """A failure a client can act on. Subclasses set ``status``; raise with a clear message."""

    status: int = 400

    def __init__(
        self,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(message, **kwargs)


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PreconditionFailed(DomainError):
    status = 412


class Unprocessable(DomainError):
    status = 422


class PreconditionRequired(DomainError):
    status = 428


class ServiceUnavailable(DomainError):
    status = 503


def error_body(status: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "status": HTTPStatus(status).phrase, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _flatten(messages: Any) -> Any:
    if isinstance(messages, dict) and messages and set(messages) <= _LOCATIONS:
        merged: dict[str, Any] = {}
        for per_location in messages.values():
            if isinstance(per_location, dict):
                merged.update(per_location)
        return merged
    return messages


def _handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    message = data.get("message") or error.description or HTTPStatus(error.code).phrase
    errors = _flatten(data.get("messages")) if data.get("messages") else None
    if errors and error.code == 422 and message == error.description:
        message = "Some fields are missing or invalid."
    response = jsonify(error_body(error.code, message, errors))
    response.status_code = error.code
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _handle_domain_error(error: DomainError):
    response = jsonify(error_body(error.status, error.message, error.errors))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _handle_database_unavailable(error: Exception):
    """The database went away mid-request (a restart, a killed connection): nothing was
    committed, so the honest answer is 'try again', not a 500."""
    log.warning("database unavailable: %s", type(getattr(error, "orig", error)).__name__)
    response = jsonify(error_body(
        503, "The database cannot be reached at the moment; nothing was saved. Try again shortly."
    ))
    response.status_code = 503
    response.headers["Retry-After"] = "2"
    return response


def _handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    log.exception("unhandled error: %s", type(error).__name__)
    return jsonify(error_body(500, "Something went wrong on our side. It has been logged.")), 500


def register_error_handlers(app: Flask) -> None:
    """Register after flask-smorest's ``Api`` so that these handlers win."""
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(OperationalError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
