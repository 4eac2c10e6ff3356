"""What keeps the pages from being used against the platform: anyone can reach them without
signing in, so nothing an anonymous request sends may cost lasting memory or unbounded work.

* Sessions live in a Redis of their own (``WEB_REDIS_URL``, evicting least-recently-used keys
  under its ``maxmemory``), never in the Celery broker's Redis, whose queues must not be evicted.
* A session without tokens (signing in, or signed out after its tokens were refused) lives only
  ``WEB_SIGN_IN_SESSION_MINUTES`` in Redis; a signed-in one ``WEB_SESSION_HOURS``. An anonymous
  request that needs no session (any page but signing in and choosing the page language)
  stores nothing: the session is written only when it holds something (Flask-Session), and the
  pages ask for a CSRF token only once someone is signed in.
* Request bodies are limited (``WEB_MAX_BODY_BYTES``; the spreadsheet import
  ``WEB_MAX_UPLOAD_BYTES``): a larger one gets 413 before it is parsed.
* Rate limits (Flask-Limiter, counted in the same Redis): per address for everyone, per
  signed-in user, and a tighter one per address for the requests that create a session.
  Over a limit: 429 with a page saying how long to wait, and ``Retry-After``.
"""
from __future__ import annotations

from datetime import timedelta

import redis
from flask import Flask, current_app, render_template, request, session
from flask_limiter import Limiter, RateLimitExceeded
from flask_session.redis import RedisSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from buendnis_common import metrics

from . import auth
from .config import WebSettings

SESSION_KEY_PREFIX = "web:session:"
#: Endpoints that store a session for someone not (yet) signed in.
SESSION_CREATING_ENDPOINTS = frozenset({"auth.login", "auth.callback", "i18n.choose_language"})
#: Endpoints that take a spreadsheet: the larger body limit.
UPLOAD_ENDPOINTS = frozenset({"participants.import_list"})
EXEMPT_ENDPOINTS = frozenset({"static", "healthz"})


class WebSessionInterface(RedisSessionInterface):
    """Flask-Session's Redis sessions, with a short life for a session that holds no tokens."""

    def __init__(self, app: Flask, client: redis.Redis, *, sign_in_lifetime: timedelta) -> None:
        super().__init__(app, client, key_prefix=SESSION_KEY_PREFIX, use_signer=False,
                         permanent=True, sid_length=32, serialization_format="msgpack")
        self.sign_in_lifetime = sign_in_lifetime

    def _upsert_session(self, session_lifetime, session, store_id) -> None:
        # dict.get: reading here must not mark the session as accessed (Vary: Cookie).
        if not dict.get(session, auth.TOKEN_KEY):
            session_lifetime = min(session_lifetime, self.sign_in_lifetime)
        super()._upsert_session(session_lifetime, session, store_id)


def install_sessions(app: Flask, settings: WebSettings) -> redis.Redis:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    app.session_interface = WebSessionInterface(
        app, client, sign_in_lifetime=timedelta(minutes=settings.sign_in_session_minutes))
    return client


def install_body_limits(app: Flask, settings: WebSettings) -> None:
    """``MAX_CONTENT_LENGTH`` for every request; the import page may send a spreadsheet."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.before_request
    def _upload_limit():
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = settings.max_upload_bytes


def install_proxy_fix(app: Flask, settings: WebSettings) -> None:
    """Behind ``WEB_PROXY_COUNT`` reverse proxies the browser's address is the one they add to
    X-Forwarded-For; without a proxy the header is ignored (anyone could send it)."""
    if settings.proxy_count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count,
                                x_proto=settings.proxy_count)


def client_address() -> str:
    return request.remote_addr or "unknown"


def _user_key() -> str:
    user = session.get(auth.USER_KEY) or {}
    return f"user:{user.get('username')}"


def _exempt() -> bool:
    return request.endpoint in EXEMPT_ENDPOINTS


def _limiter(settings: WebSettings, *, key_func, limit: str, prefix: str, exempt_when) -> Limiter:
    return Limiter(
        key_func=key_func,
        application_limits=[limit],
        application_limits_exempt_when=exempt_when,
        storage_uri=settings.redis_url,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        key_prefix=prefix,
        headers_enabled=False,  # Retry-After is set by the 429 page below
        # Redis down: limits go on per process rather than the pages going down with it.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        strategy="fixed-window",
    )


def install_rate_limits(app: Flask, settings: WebSettings) -> None:
    """Per address (all requests), per address for the session-creating ones, per user."""
    limiters = [
        _limiter(settings, key_func=client_address, limit=settings.rate_limit_per_address,
                 prefix="web-addr", exempt_when=_exempt),
        _limiter(settings, key_func=client_address, limit=settings.rate_limit_sign_in,
                 prefix="web-signin",
                 exempt_when=lambda: request.endpoint not in SESSION_CREATING_ENDPOINTS),
        _limiter(settings, key_func=_user_key, limit=settings.rate_limit_per_user,
                 prefix="web-user",
                 exempt_when=lambda: _exempt() or not session.get(auth.USER_KEY)),
    ]
    for limiter in limiters:
        limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many_requests)


def too_many_requests(error: RateLimitExceeded):
    """429: a page that says how long to wait."""
    metrics.count_rate_limited("web")
    seconds = max(1, int(error.limit.limit.get_expiry()))
    response = current_app.make_response(
        (render_template("error.html", status=429, retry_after=seconds), 429))
    response.headers["Retry-After"] = str(seconds)
    return response
