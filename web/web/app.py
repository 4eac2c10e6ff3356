"""create_app(): the web front end's Flask application."""
from __future__ import annotations

import logging
import re
import uuid
from datetime import date, datetime, timedelta

from flask import Flask, current_app, g, render_template, request, session
from flask_babel import Babel, format_date, format_datetime, get_locale
from flask_wtf.csrf import CSRFError, CSRFProtect

from buendnis_common import messages, metrics, tracing
from buendnis_common.settings import env_str
from buendnis_common.web import configure_logging

from . import api, auth, i18n, protection
from .config import WebSettings

log = logging.getLogger("buendnis.web")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

# The pages load nothing from elsewhere: no CDN, no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' {idp}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)


def create_app(settings: WebSettings | None = None) -> Flask:
    # The services' logging: one handler with request ids, without personal data (logfilter).
    configure_logging(env_str("LOG_LEVEL", "INFO"))
    settings = settings or WebSettings.from_env()
    app = Flask(__name__)
    secure = settings.public_url.startswith("https://")
    app.config.update(
        WEB_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        # Sessions (tokens, the kept form) live in Redis; the browser holds only a random id.
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        SESSION_COOKIE_NAME="buendnis_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which has its own lifetime
        BABEL_DEFAULT_LOCALE=i18n.DEFAULT_LANGUAGE,
        BABEL_DEFAULT_TIMEZONE="Europe/Berlin",
    )
    protection.install_proxy_fix(app, settings)
    protection.install_sessions(app, settings)
    Babel(app, locale_selector=i18n.select_locale)
    auth.Oidc(app)

    metrics.instrument_flask(app)  # requests by route template, on METRICS_PORT only
    tracing.setup("web")
    tracing.instrument_flask(app)
    app.before_request(_request_id)
    protection.install_body_limits(app, settings)
    protection.install_rate_limits(app, settings)
    # The CSRF check before the sign-in check: nothing a forged or anonymous form sends is
    # kept; the form of a signed-in session whose tokens ran out is (auth.sign_in_redirect).
    csrf = CSRFProtect(app)
    csrf.exempt(i18n.choose_language)  # checked there, once someone is signed in
    app.before_request(auth.require_sign_in)
    app.after_request(_security_headers)

    from .views import answer, home, offers, participants, referrals, reports

    # The participant's answer page: no sign-in, no session; the signed link is the credential.
    csrf.exempt(answer.blp)
    for blueprint in (auth.blp, i18n.blp, home.blp, participants.blp, referrals.blp, offers.blp,
                      reports.blp, answer.blp):
        app.register_blueprint(blueprint)

    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    _register_error_pages(app)
    _register_template_helpers(app)
    return app


def _request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _security_headers(response):
    idp = current_app.config["WEB_SETTINGS"].oidc_public_url
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY.format(idp=idp))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        # Pages carry personal data: not into shared or browser caches.
        response.headers["Cache-Control"] = "no-store"
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(auth.SignInRequired)
    def sign_in_required(_exc):
        return auth.sign_in_redirect()

    @app.errorhandler(api.ApiNotFound)
    def not_found(_exc):
        return render_template("error.html", status=404), 404

    @app.errorhandler(404)
    def page_not_found(_exc):
        return render_template("error.html", status=404), 404

    @app.errorhandler(api.ApiUnavailable)
    def unavailable(exc):
        log.warning("API unavailable: %s", exc)
        return render_template("error.html", status=503), 503

    @app.errorhandler(api.ApiError)
    def api_error(exc: api.ApiError):
        # Views handle the errors they expect (422 beside the fields, 409 …); what is left
        # is shown plainly, with the API's own message in the page's language.
        return render_template("error.html", status=exc.status,
                               message=exc.localized_message), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(_exc):
        return render_template("error.html", status=400, csrf=True), 400

    @app.errorhandler(413)
    def too_large(_exc):
        return render_template("error.html", status=413), 413

    @app.errorhandler(500)
    def server_error(_exc):
        return render_template("error.html", status=500), 500


def _register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["date"] = lambda value, fmt="medium": (
        format_date(_parse_date(value), fmt) if value else "–")
    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(_parse_datetime(value), fmt) if value else "–")
    app.jinja_env.filters["textdir"] = i18n.text_direction
    # A row error of an import, by its code in the page's language (the worker keeps English).
    app.jinja_env.filters["api_error"] = lambda error: (
        messages.text(error["code"], error.get("params"), str(get_locale() or "de"))
        if api.is_field_error(error) else str(error.get("message", "")))
    app.jinja_env.globals.update(
        label=i18n.label,
        choices=i18n.choices,
        language_name=i18n.language_name,
        language_choices=i18n.language_choices,
        country_choices=i18n.country_choices,
        ui_languages=i18n.UI_LANGUAGES,
        has_role=auth.has_role,
    )

    @app.context_processor
    def user_context():
        return {"user": session.get(auth.USER_KEY), "page_lang": str(get_locale())}


def _parse_date(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _parse_datetime(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
