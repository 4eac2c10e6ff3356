"""Rate limits, security headers and CORS for the public entry.

Every request is counted against each limit it falls under in one Redis round trip (a Lua
script increments every window's counter and returns it with its time to live): per address
always, per signed-in user, and the open offer directory's own per-address limit. The windows
and their keys are those of ``limits`` (the library under Flask-Limiter), fixed windows of
``600/minute`` and the like. Redis unreachable: the counting goes on in each process (limits'
memory storage) for a few seconds before Redis is tried again, rather than the API going down
with it.

The per-address limit counts the client's address. Behind a proxy that is the address the proxy
puts into X-Forwarded-For — but only a proxy in ``GATEWAY_TRUSTED_PROXIES`` is believed (the
web front end, which calls for all its users from one address, or a load balancer): anyone
else could write any address there and so escape the limit. The header is read from the right,
skipping trusted proxies, as nginx's ``real_ip_recursive`` does; the first address that is not a
trusted proxy is the client. The per-user limit holds whatever the address.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from flask import Flask, g, jsonify, request
from flask_cors import CORS
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from buendnis_common import metrics
from buendnis_common.errors import DomainError, error_body
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
HSDS_PREFIX = "/hsds/"

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Limit:
    """One limit: the prefix of its counters' keys and its rate (``600/minute``)."""

    prefix: str
    item: RateLimitItem

    @classmethod
    def of(cls, prefix: str, rate: str) -> Limit:
        return cls(prefix, parse(rate))


class RateLimited(Exception):
    """A limit is exceeded; ``retry_after``: the seconds until its window ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


# Increments each key's counter (its window starts with the first hit: EXPIRE on 1, as limits'
# own incr_expire.lua does) and returns count and time to live of each, in one round trip.
_HIT_ALL = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  result[2 * i - 1] = count
  result[2 * i] = redis.call('TTL', key)
end
return result
"""


class Counter:
    """Counts a request against several limits at once, in Redis; while Redis cannot be
    reached, in this process for ``retry_seconds`` before Redis is tried again."""

    def __init__(self, storage_uri: str, *, retry_seconds: float = 5.0) -> None:
        self.redis = redis.Redis.from_url(storage_uri, socket_connect_timeout=1,
                                          socket_timeout=1)
        self._hit_all = self.redis.register_script(_HIT_ALL)
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._retry_seconds = retry_seconds
        self._redis_again_at = 0.0

    def hit(self, hits: list[tuple[Limit, str]]) -> int | None:
        """Count one request against each (limit, key): the seconds to wait when one of them
        is exceeded, or None."""
        if time.monotonic() >= self._redis_again_at:
            keys = [limit.item.key_for(limit.prefix, key) for limit, key in hits]
            try:
                counts = self._hit_all(keys=keys,
                                       args=[limit.item.get_expiry() for limit, _ in hits])
            except redis.RedisError:
                log.warning("rate limits: Redis is unreachable; counting in this process for "
                            "%.0f s", self._retry_seconds)
                self._redis_again_at = time.monotonic() + self._retry_seconds
            else:
                waits = [max(1, int(counts[2 * i + 1]))
                         for i, (limit, _key) in enumerate(hits)
                         if int(counts[2 * i]) > limit.item.amount]
                return max(waits) if waits else None
        waits = [limit.item.get_expiry() for limit, key in hits
                 if not self._fallback.hit(limit.item, limit.prefix, key)]
        return max(waits) if waits else None


def rate_limited(error: RateLimited):
    """429 in the platform's error body, with how long to wait."""
    metrics.count_rate_limited("gateway")
    response = jsonify(error_body(429, error_code="gateway.too_many_requests"))
    response.status_code = 429
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def install_rate_limits(app: Flask, *, authenticate: Callable[[], None], storage_uri: str,
                        per_address: str, per_user: str, hsds_per_address: str,
                        trusted_proxies: Iterable[str] = ()) -> Counter:
    """The token check (``authenticate``) and every limit, in one hook.

    The token is checked first, so that the user is known, but its refusal waits until the
    request has been counted: guessing tokens counts against the address, and an address over
    its limit gets 429 whatever it sends. One Redis round trip counts the request per address,
    per signed-in user (an anonymous request: per address, under the user limit), and on the
    open offer directory (``/hsds/``, no token) against its own lower limit
    (``RATE_LIMIT_HSDS_PER_ADDRESS``). Health checks are not counted."""
    trusted = trusted_networks(trusted_proxies)
    counter = Counter(storage_uri)
    by_address = Limit.of("buendnis-addr", per_address)
    by_user = Limit.of("buendnis-user", per_user)
    hsds = Limit.of("buendnis-hsds", hsds_per_address)

    @app.before_request
    def _authenticate_and_count():
        request.environ["buendnis.trusted_proxies"] = trusted
        refused = None
        try:
            authenticate()
        except DomainError as error:
            refused = error
        if request.path in EXEMPT_PATHS:
            if refused is not None:
                raise refused
            return
        address = client_address()
        hits = [(by_address, address)]
        if request.path.startswith(HSDS_PREFIX):
            hits.append((hsds, address))
        if refused is None:
            hits.append((by_user, _user_key()))
        wait = counter.hit(hits)
        if wait is not None:
            raise RateLimited(wait)
        if refused is not None:
            raise refused

    app.register_error_handler(RateLimited, rate_limited)
    return counter


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
