"""Errors with codes: the exceptions that carry their HTTP status, and the one handler that turns
every error into API.md's body::

    {"code": 422, "status": "Unprocessable Entity", "error_code": "participant.age_out_of_range",
     "params": {"min": 18, "max": 27, "age": 31}, "message": "…",
     "errors": {"birth_date": [{"code": "…", "message": "…", "params": {…}}]}}

A raise site names a stable dotted code and the values the message uses —
``raise Unprocessable("participant.age_out_of_range", min=18, max=27, age=31)`` — never a sentence.
The sentence comes from the one catalogue (``buendnis_common.messages``) in the language of the
request's ``Accept-Language`` (German or English; English without the header). Clients translate
by code, never by parsing text.

Field errors come from two places, and both end as ``{"code", "message", "params"}``:

* a raise site's ``errors={"to_org": [FieldError("referral.to_org_unknown", org=…)]}``;
* marshmallow, through webargs. marshmallow builds every message by calling ``str.format`` on a
  template (a field's ``error_messages[key]``, a validator's ``message_min`` …) with the values of
  the check. ``Coded`` is a ``str`` whose ``format`` keeps a code and those values: the shared
  base schema (``buendnis_common.validation.Schema``) puts a ``Coded`` template in every field's
  and validator's place when marshmallow binds the field (its documented ``on_bind_field`` hook),
  coded by marshmallow's own error keys (``required``, ``null``, ``invalid``; ``Length``'s
  ``min``/``max``/``all``). No message is ever parsed back into a code.

A ``DomainError`` takes a code and nothing else: raised with a sentence, it is a ``ValueError``
where it is raised (and the catalogue test, ``tests/test_error_codes.py``, names the raise site).
"""
from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import Flask, jsonify
from flask_smorest.error_handler import ErrorSchema as _SmorestErrorSchema
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from . import messages

log = logging.getLogger(__name__)

# webargs reports field errors per location ({"json": {"birth_date": [...]}}); clients want the
# field names themselves under "errors".
_LOCATIONS = {"json", "query", "querystring", "form", "files", "headers", "view_args", "path"}
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# Values marshmallow passes to its templates that must not come back: the caller's own input
# (it may be personal data) and implementation details.
_HIDDEN_PARAMS = frozenset({"input", "labels", "regex", "obj_type", "awareness", "min_op",
                            "max_op", "method", "value"})


def is_code(text: str) -> bool:
    return bool(CODE.match(text))


class Coded(str):
    """A message (English) that knows its code and params; ``format`` keeps them (see above)."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, english: str | None = None, /, **params: Any) -> Coded:
        shown = english if english is not None else messages.text(code, params, "en")
        self = super().__new__(cls, shown)
        self.code = code
        self.params = params
        return self

    def format(self, *args: Any, **kwargs: Any) -> Coded:  # noqa: A003 - str's own name
        return Coded(self.code, str.format(self, *args, **kwargs), **{**self.params, **kwargs})

    def __reduce__(self):
        return (_coded, (self.code, str(self), self.params))


def _coded(code: str, english: str, params: dict[str, Any]) -> Coded:
    return Coded(code, english, **params)


def FieldError(code: str, /, **params: Any) -> Coded:  # noqa: N802 - reads as a value
    """One field error for ``errors={field: [FieldError(code, **params)]}`` or for marshmallow's
    ``ValidationError(FieldError(code, **params), field)``."""
    return Coded(code, **params)


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params a body may carry: JSON values only, never the caller's input."""
    shown: dict[str, Any] = {}
    for key, value in params.items():
        if key in _HIDDEN_PARAMS or value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [item if isinstance(item, (str, int, float, bool)) else str(item)
                     for item in value]
            value = messages.AnyOf(items) if isinstance(value, messages.AnyOf) else items
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            value = str(value)
        shown[key] = value
    return shown


def field_error(message: Any) -> dict[str, Any]:
    """``{"code", "message", "params"}`` for one marshmallow/raise-site message."""
    if isinstance(message, Coded):
        params = public_params(message.params)
        return {"code": message.code, "message": messages.text(message.code, params),
                "params": params}
    return {"code": "field.invalid", "message": str(message), "params": {}}


def coded_errors(errors: Any, *, every_text: bool) -> Any:
    """Field errors with codes; with ``every_text`` plain texts too (webargs' answers), without
    it only ``Coded`` ones (a raise site's ``errors`` may carry data such as ``allowed``)."""
    if isinstance(errors, dict):
        return {str(key): coded_errors(value, every_text=every_text)
                for key, value in errors.items()}
    if isinstance(errors, (list, tuple)):
        return [coded_errors(item, every_text=every_text) for item in errors]
    if isinstance(errors, Coded) or (every_text and isinstance(errors, str)):
        return field_error(errors)
    return errors


class DomainError(Exception):
    """A failure a client can act on. Subclasses set ``status``; raise with a code and params:
    ``raise Conflict("referral.duplicate", org=…, need=…, referral=…)``. ``field="to_org"``
    reports the same error as that field's error too (``errors={"to_org": [{…}]}``)."""

    status: int = 400

    def __init__(
        self,
        code: str,
        /,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        field: str | None = None,
        **params: Any,
    ) -> None:
        if not is_code(code):
            raise ValueError(f"an error is raised with a code from the catalogue, not {code!r}")
        if field is not None:
            errors = {field: [Coded(code, **params)], **(errors or {})}
        self.code = code
        self.params = params
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.english)

    def text(self, language: str | None = None) -> str:
        return messages.text(self.code, public_params(self.params), language)

    @property
    def message(self) -> str:
        """The message in the current request's language (English outside a request)."""
        return self.text()

    @property
    def english(self) -> str:
        return self.text("en")


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401

    def __init__(self, code: str, /, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(code, **kwargs)


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


class ErrorSchema(_SmorestErrorSchema):
    """API.md's error body in the OpenAPI document (flask-smorest's, with the code)."""

    error_code = ma.fields.String(metadata={"description": "Stable dotted code of the error"})
    params = ma.fields.Dict(metadata={"description": "The values the message uses"})


class Api(flask_smorest.Api):
    """flask-smorest's ``Api`` documenting the error body with its code (``ERROR_SCHEMA``)."""

    ERROR_SCHEMA = ErrorSchema


def error_body(status: int, message: str | None = None, errors: dict[str, Any] | None = None,
               *, error_code: str | None = None,
               params: dict[str, Any] | None = None) -> dict[str, Any]:
    """API.md's error body. With ``error_code`` and no ``message`` the message is the code's
    text in the request's language."""
    error_code = error_code or f"error.{status}"
    params = public_params(params or {})
    if message is None:
        message = messages.text(error_code, params)
    body: dict[str, Any] = {"code": status, "status": HTTPStatus(status).phrase,
                            "error_code": error_code, "params": params, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _flatten(messages_: Any) -> Any:
    if isinstance(messages_, dict) and messages_ and set(messages_) <= _LOCATIONS:
        merged: dict[str, Any] = {}
        for per_location in messages_.values():
            if isinstance(per_location, dict):
                merged.update(per_location)
        return merged
    return messages_


def _http_code(error: HTTPException) -> str:
    """``http.not_found``, ``http.precondition_failed`` …: werkzeug's own errors by status."""
    return "http." + HTTPStatus(error.code).name.lower()


def _handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    errors = _flatten(data.get("messages")) if data.get("messages") else None
    code = _http_code(error)
    message = None
    if errors and error.code == 422:
        code = "request.invalid_fields"
    elif data.get("message") or (error.description != type(error).description):
        # a message the raise site wrote itself (abort(404, message="…")): as it was written
        message = data.get("message") or error.description
    if errors:
        errors = coded_errors(errors, every_text=True)
    response = jsonify(error_body(error.code, message, errors, error_code=code))
    response.status_code = error.code
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _handle_domain_error(error: DomainError):
    errors = coded_errors(error.errors, every_text=False) if error.errors else None
    response = jsonify(error_body(error.status, error.message, errors, error_code=error.code,
                                  params=error.params))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _handle_database_unavailable(error: Exception):
    """The database went away mid-request (a restart, a killed connection): nothing was
    committed, so the honest answer is 'try again', not a 500."""
    log.warning("database unavailable: %s", type(getattr(error, "orig", error)).__name__)
    response = jsonify(error_body(503, error_code="service.database_unavailable"))
    response.status_code = 503
    response.headers["Retry-After"] = "2"
    return response


def _handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    log.exception("unhandled error: %s", type(error).__name__)
    return jsonify(error_body(500, error_code="service.internal_error")), 500


def register_error_handlers(app: Flask) -> None:
    """Register after flask-smorest's ``Api`` so that these handlers win."""
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(OperationalError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
