"""Rate limits, security headers and CORS for the public entry."""
from __future__ import annotations

from flask import Flask, g, jsonify, request
from flask_cors import CORS
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from buendnis_common.errors import error_body

# API answers carry personal data: never cached, never framed, never sniffed.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI's page carries its configuration in an inline script; it shows no personal data.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


def _exempt() -> bool:
    return request.path in EXEMPT_PATHS


def _user_key() -> str:
    principal = getattr(g, "principal", None)
    return f"user:{principal.subject}" if principal else f"addr:{get_remote_address()}"


def limiter(*, key_func, limit: str, prefix: str, storage_uri: str) -> Limiter:
    return Limiter(
        key_func=key_func,
        application_limits=[limit],
        application_limits_exempt_when=_exempt,
        storage_uri=storage_uri,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        key_prefix=prefix,
        # One Redis round trip per check; Retry-After is set by rate_limited() below.
        headers_enabled=False,
        # Redis down: limits go on per process rather than the API going down with it.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        strategy="fixed-window",
    )


def rate_limited(error: RateLimitExceeded):
    """429 in the platform's error body, with how long to wait."""
    response = jsonify(error_body(429, "Too many requests; please wait a little and try again."))
    response.status_code = 429
    response.headers["Retry-After"] = str(max(1, error.limit.limit.get_expiry()))
    return response


def install_address_limit(app: Flask, *, limit: str, storage_uri: str) -> Limiter:
    """Per client address; installed before the token check, so that guessing tokens counts."""
    by_address = limiter(key_func=get_remote_address, limit=limit, prefix="buendnis-addr",
                         storage_uri=storage_uri)
    by_address.init_app(app)
    app.register_error_handler(RateLimitExceeded, rate_limited)
    return by_address


def install_user_limit(app: Flask, *, limit: str, storage_uri: str) -> Limiter:
    """Per signed-in user; installed after the token check, which names the user."""
    by_user = limiter(key_func=_user_key, limit=limit, prefix="buendnis-user",
                      storage_uri=storage_uri)
    by_user.init_app(app)
    return by_user


def install_headers_and_cors(app: Flask, *, cors_origins: list[str]) -> None:
    if cors_origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": cors_origins}},
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match",
                           "X-Request-ID"],
            expose_headers=["ETag", "Location", "X-Pagination", "X-Request-ID", "Retry-After"],
            methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            supports_credentials=False,
            max_age=600,
        )

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        docs = request.path == "/api/docs" or request.path.startswith("/api/docs/")
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
        if request.path.startswith("/api/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
