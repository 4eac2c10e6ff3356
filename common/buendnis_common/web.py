"""The Flask side every service shares: request ids, the token check, the error body, health."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable

import flask_smorest
import marshmallow as ma
from flask import Flask, current_app, g, request
from webargs.flaskparser import FlaskParser

from . import logfilter, logformat, policy
from .auth import PLATFORM_ROLES, Principal, TokenVerifier, bearer_token
from .errors import Api, Forbidden, register_error_handlers

MAX_PAGE = 1_000_000


def _page_within_bound(parameters) -> None:
    try:
        ma.validate.Range(min=1, max=MAX_PAGE)(parameters.page)
    except ma.ValidationError as error:
        raise ma.ValidationError({"page": error.messages}) from None


class BoundedPaginationParser(FlaskParser):
    """flask-smorest's ``page`` has no upper bound, and a page number past SQL's 64-bit offsets
    made the database fail (500): this parser of the pagination arguments refuses a page above
    ``MAX_PAGE`` with 422, through webargs' public ``validate`` hook."""

    def parse(self, argmap, req=None, *, validate=None, **kwargs):
        validators = [validate] if callable(validate) else list(validate or ())
        return super().parse(argmap, req, validate=[*validators, _page_within_bound], **kwargs)


class Blueprint(flask_smorest.Blueprint):
    """Every service's API blueprint: flask-smorest's, with its public pagination extension
    point (``PAGINATION_ARGUMENTS_PARSER``) bounding the page number."""

    PAGINATION_ARGUMENTS_PARSER = BoundedPaginationParser()

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

# Paths anyone may call: health and the API document. Everything else needs a token.
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
INTERNAL_PREFIX = "/internal/"


class RequestIdFilter(logging.Filter):
    """Puts the request id on every log record, so a line can be followed across services."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = getattr(g, "request_id", "-")
        except RuntimeError:  # outside a request
            record.request_id = "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    """One handler on the root logger, with request ids and without personal data (see
    ``logfilter``: database values, Celery task arguments and query strings are hidden, also in
    gunicorn's own error log)."""
    root = logging.getLogger()
    if any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    logfilter.quiet_sql_loggers()
    handlers = [*root.handlers, *logging.getLogger("gunicorn.error").handlers,
                *logging.getLogger("gunicorn.access").handlers]
    logfilter.install(handlers)
    # One JSON object per line, or LOG_FORMAT=text (buendnis_common.logformat).
    logformat.apply(handlers)


def whoami(principal: Principal) -> dict:
    """API.md's ``GET /api/v1/me``."""
    return {
        "username": principal.username,
        "organization": {"alias": principal.org_alias, "type": principal.org_type,
                         "alliance": principal.alliance},
        "roles": sorted(principal.roles & PLATFORM_ROLES),
    }


def current_principal() -> Principal:
    return g.principal


def assign_request_id() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())


def echo_request_id(response):
    response.headers.setdefault(REQUEST_ID_HEADER, getattr(g, "request_id", ""))
    return response


def install_request_ids(app: Flask) -> None:
    """Every request carries an ``X-Request-ID`` (the caller's, if well-formed) into the logs,
    the audit entries, the services it reaches and the response."""
    app.before_request(assign_request_id)
    app.after_request(echo_request_id)


def install_auth(
    app: Flask,
    verifier: TokenVerifier,
    public_paths: Iterable[str] = (),
    public_prefixes: tuple[str, ...] = (),
) -> None:
    """Every route needs a valid token unless it is public: a person of exactly one organisation
    for the API, a service account (role ``service``) for ``/internal/`` routes."""
    app.before_request(authenticator(verifier, public_paths, public_prefixes))


def authenticator(
    verifier: TokenVerifier,
    public_paths: Iterable[str] = (),
    public_prefixes: tuple[str, ...] = (),
) -> Callable[[], None]:
    """``install_auth``'s token check as a function, for a hook that does more around it (the
    gateway counts a refused token against the caller's rate limit before refusing)."""
    public = PUBLIC_PATHS | frozenset(public_paths)

    def authenticate() -> None:
        if request.path in public or request.method == "OPTIONS":
            return
        if policy.is_public(request.path, request.method):  # the policy's public routes
            return
        if public_prefixes and request.path.startswith(public_prefixes):
            return
        token = bearer_token(request.headers.get("Authorization"))
        if request.path.startswith(INTERNAL_PREFIX):
            principal = verifier.principal(token, require_organization=False)
            if not principal.is_service:
                raise Forbidden("policy.services_only")
        else:
            principal = verifier.principal(token)
        g.principal = principal
        g.access_token = token

    return authenticate


def install_policy(app: Flask, public_paths: Iterable[str] = ()) -> None:
    """The role policy (``buendnis_common.policy``) on every request a service answers, after
    the token check: the same table the gateway applies, so a token sent straight to the
    service's port gets the gateway's answer (403 for a role, 404 for a route in no table).
    ``/internal/`` routes take only the service account of the one service each is for."""
    public = PUBLIC_PATHS | frozenset(public_paths)

    @app.before_request
    def _apply_policy():
        if request.path in public or request.method == "OPTIONS":
            return
        if policy.is_public(request.path, request.method):
            return
        principal = g.principal
        if request.path.startswith(INTERNAL_PREFIX):
            policy.enforce(policy.decide_internal(principal, request.path, request.method))
        else:
            policy.enforce(policy.decide(principal, request.path, request.method, request.args))


def create_flask_app(
    import_name: str,
    *,
    title: str,
    verifier: TokenVerifier,
    public_paths: Iterable[str] = (),
    config: dict | None = None,
) -> tuple[Flask, Api]:
    app = Flask(import_name, static_folder=None)
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
    )
    app.config.update(config or {})
    app.json.sort_keys = False
    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    register_error_handlers(app)
    install_request_ids(app)
    install_auth(app, verifier, public_paths)
    install_policy(app, public_paths)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "service": current_app.name}

    @app.get("/api/v1/me")
    def me():
        """Who the service takes the caller for (the gateway answers this path itself)."""
        return whoami(current_principal())

    return app, api
