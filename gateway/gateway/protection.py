"""Rate limits, security headers and CORS for the public entry.

The per-address limit counts the client's address. Behind a proxy that is the address the proxy
puts into X-Forwarded-For — but only a proxy in ``GATEWAY_TRUSTED_PROXIES`` is believed (the
web front end, which calls for all its users from one address, or a load balancer): anyone
else could write any address there and so escape the limit. The header is read from the right,
skipping trusted proxies, as nginx's ``real_ip_recursive`` does; the first address that is not a
trusted proxy is the client. The per-user limit holds whatever the address.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import Flask, g, jsonify, request
from flask_cors import CORS
from flask_limiter import Limiter, RateLimitExceeded

from buendnis_common import metrics
from buendnis_common.errors import error_body
from buendnis_common.settings import SettingsError

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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``GATEWAY_TRUSTED_PROXIES`` as networks; a wrong entry stops the start."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an address or network") from None
    return tuple(networks)


def _is_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def resolve_client(remote: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The client's address: ``remote``, unless that is a trusted proxy; then the rightmost
    address in X-Forwarded-For that is not a trusted proxy."""
    if not trusted or not _is_in(remote, trusted):
        return remote
    client = remote
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage from a trusted proxy: count the proxy itself
        client = hop
        if not _is_in(hop, trusted):
            break
    return client


def client_address() -> str:
    """The address the per-address limit counts (once per request)."""
    if "client_address" not in g:
        trusted = request.environ.get("buendnis.trusted_proxies", ())
        g.client_address = resolve_client(request.remote_addr or "",
                                          request.headers.get("X-Forwarded-For", ""), trusted)
    return g.client_address


def _user_key() -> str:
    principal = getattr(g, "principal", None)
    return f"user:{principal.subject}" if principal else f"addr:{client_address()}"


def limiter(*, key_func, limit: str, prefix: str, storage_uri: str,
            exempt_when=_exempt) -> Limiter:
    return Limiter(
        key_func=key_func,
        application_limits=[limit],
        application_limits_exempt_when=exempt_when,
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
    metrics.count_rate_limited("gateway")
    response = jsonify(error_body(429, "Too many requests; please wait a little and try again."))
    response.status_code = 429
    response.headers["Retry-After"] = str(max(1, error.limit.limit.get_expiry()))
    return response


def install_address_limit(app: Flask, *, limit: str, storage_uri: str,
                          trusted_proxies: Iterable[str] | None = None) -> Limiter:
    """Per client address; installed before the token check, so that guessing tokens counts.
    ``trusted_proxies``: by default the gateway's settings (``GATEWAY_TRUSTED_PROXIES``)."""
    if trusted_proxies is None:
        settings = app.extensions.get("gateway", {}).get("settings")
        trusted_proxies = getattr(settings, "trusted_proxies", ())
    trusted = trusted_networks(trusted_proxies)

    @app.before_request
    def _trusted_proxies():
        request.environ["buendnis.trusted_proxies"] = trusted

    by_address = limiter(key_func=client_address, limit=limit, prefix="buendnis-addr",
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


HSDS_PREFIX = "/hsds/"


def install_hsds_limit(app: Flask, *, limit: str, storage_uri: str) -> Limiter:
    """The open offer directory answers without a token, so only the client address limits
    it: its own, lower limit, counted apart from the API's (``RATE_LIMIT_HSDS_PER_ADDRESS``)."""
    by_address = limiter(key_func=client_address, limit=limit, prefix="buendnis-hsds",
                         storage_uri=storage_uri,
                         exempt_when=lambda: not request.path.startswith(HSDS_PREFIX))
    by_address.init_app(app)
    return by_address


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

    # The open offer directory is public data for any website (a municipality's page may read it
    # in the browser): any origin, GET only, never with credentials.
    CORS(app, resources={r"/hsds/*": {"origins": "*"}}, methods=["GET"], allow_headers=[],
         supports_credentials=False, send_wildcard=True, max_age=600)

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        docs = request.path == "/api/docs" or request.path.startswith("/api/docs/")
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
        if request.path.startswith("/api/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
