"""Sign-in with the identity provider (authorization code + PKCE, Authlib), sign-out, and the
return to sign-in when a session has ended — keeping the form that was being filled in.

A form is kept only for a session that was signed in (its tokens were refused, or it had been
signed in before they were dropped), only after its CSRF token passed, only up to
``WEB_PENDING_FORM_MAX_BYTES`` and only for ``WEB_PENDING_FORM_MINUTES``: an anonymous POST
never gets anything stored."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import ValidationError, validate_csrf

TOKEN_KEY = "token"
USER_KEY = "user"
ID_TOKEN_KEY = "id_token"
PENDING_FORM_KEY = "pending_form"
# Set when a signed-in session's tokens are dropped: the session may keep a form until sign-in.
ENDED_SIGN_IN_KEY = "sign_in_ended"
# Form fields never kept: the CSRF token belongs to the old session.
UNKEPT_FIELDS = frozenset({"csrf_token"})

blp = Blueprint("auth", __name__)


class SignInRequired(Exception):
    """No session, or its tokens are no longer accepted."""


class Oidc:
    """The ``buendnis-web`` client at the identity provider (Keycloak, or the local one)."""

    def __init__(self, app: Flask) -> None:
        settings = app.config["WEB_SETTINGS"]
        self.settings = settings
        self.oauth = OAuth(app)
        self.client = self.oauth.register(
            "idp",
            client_id=settings.client_id,
            server_metadata_url=settings.discovery_url,
            client_kwargs={"scope": "openid", "code_challenge_method": "S256"},
        )
        app.extensions["buendnis_oidc"] = self

    def metadata(self) -> dict[str, Any]:
        return self.client.load_server_metadata()

    def token_endpoint(self) -> str:
        return self.metadata()["token_endpoint"]

    def browser_url(self, url: str) -> str:
        """An identity-provider URL as the browser must reach it."""
        internal, public = self.settings.oidc_server_url, self.settings.oidc_public_url
        return public + url[len(internal):] if url.startswith(internal) else url


def oidc() -> Oidc:
    return current_app.extensions["buendnis_oidc"]


def signed_in() -> bool:
    return bool(session.get(TOKEN_KEY))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


def was_signed_in() -> bool:
    """This session is signed in, or was until its tokens were refused."""
    return signed_in() or bool(session.get(ENDED_SIGN_IN_KEY))


def keep_pending_form() -> bool:
    """Keeps what the user had typed into the form they sent when their session had ended —
    if the session was signed in, the form's CSRF token is this session's and it is small."""
    if not was_signed_in():
        return False
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    fields = {
        key: request.form.getlist(key)
        for key in request.form
        if key not in UNKEPT_FIELDS
    }
    size = sum(len(key.encode()) + sum(len(value.encode()) for value in values)
               for key, values in fields.items())
    if size > current_app.config["WEB_SETTINGS"].pending_form_max_bytes:
        return False
    session[PENDING_FORM_KEY] = {
        "path": request.path,
        "form": fields,
        "kept_at": time.time(),
    }
    return True


def _pending_form_is_stale(pending: dict) -> bool:
    max_age = current_app.config["WEB_SETTINGS"].pending_form_minutes * 60
    return time.time() - pending.get("kept_at", 0) > max_age


def take_pending_form(path: str) -> dict[str, list[str]] | None:
    """The kept form for ``path`` (once), if it is not too old."""
    pending = session.get(PENDING_FORM_KEY)
    if not pending or pending.get("path") != path:
        return None
    session.pop(PENDING_FORM_KEY, None)
    if _pending_form_is_stale(pending):
        return None
    return pending["form"]


def sign_in_redirect():
    """Where a request goes when the user must sign in (again)."""
    if request.method == "POST":
        keep_pending_form()
        target = request.path
    else:
        target = request.full_path if request.query_string else request.path
    if signed_in():
        session[ENDED_SIGN_IN_KEY] = True
    for key in (TOKEN_KEY, USER_KEY, ID_TOKEN_KEY):
        session.pop(key, None)
    return redirect(url_for("auth.login", next=target.rstrip("?")))


@blp.get("/anmelden")
def login():
    """Sends the browser to the identity provider's login page."""
    session["next"] = _safe_next(request.args.get("next"))
    if session.get(PENDING_FORM_KEY):
        flash(_("Ihre Sitzung war abgelaufen. Melden Sie sich erneut an – Ihre Eingaben "
                "bleiben erhalten."), "info")
    redirect_uri = current_app.config["WEB_SETTINGS"].public_url + url_for("auth.callback")
    response = oidc().client.authorize_redirect(redirect_uri)
    response.headers["Location"] = oidc().browser_url(response.headers["Location"])
    return response


@blp.get("/anmelden/zurueck")
def callback():
    """The identity provider's answer: code → tokens; then on to where the user wanted to go."""
    if "error" in request.args:
        return render_template("signin_failed.html"), 400
    try:
        token = oidc().client.authorize_access_token()
    except AuthlibBaseError:
        return render_template("signin_failed.html"), 400
    # Import here: api needs this module's names.
    from . import api

    # A new session id once signed in: an id planted before sign-in is worth nothing after.
    current_app.session_interface.regenerate(session)
    session.pop("organizations", None)  # what the previous user of this browser could address
    session.pop(ENDED_SIGN_IN_KEY, None)
    session[TOKEN_KEY] = {k: v for k, v in token.items() if k != "userinfo"}
    session[ID_TOKEN_KEY] = token.get("id_token")
    try:
        session[USER_KEY] = api.get("/api/v1/me").body
    except api.ApiError as exc:
        # Signed in at the identity provider, but not a platform user (no organisation…).
        session.pop(TOKEN_KEY, None)
        return render_template("signin_failed.html", message=exc.localized_message), 403
    return redirect(_safe_next(session.pop("next", None)))


@blp.post("/abmelden")
def logout():
    """Ends the session here and at the identity provider."""
    id_token = session.get(ID_TOKEN_KEY)
    session.clear()
    end_session = oidc().metadata().get("end_session_endpoint")
    if not end_session:
        return redirect(url_for("auth.signed_out"))
    params = {
        "client_id": current_app.config["WEB_SETTINGS"].client_id,
        "post_logout_redirect_uri": current_app.config["WEB_SETTINGS"].public_url
        + url_for("auth.signed_out"),
    }
    if id_token:
        params["id_token_hint"] = id_token
    return redirect(oidc().browser_url(end_session) + "?" + urlencode(params))


@blp.get("/abgemeldet")
def signed_out():
    if signed_in():
        return redirect(url_for("home.index"))
    return render_template("signed_out.html")


PUBLIC_ENDPOINTS = frozenset({
    "auth.login", "auth.callback", "auth.signed_out", "static", "healthz", "i18n.choose_language",
    # A participant answers an e-mail reminder (views.answer): the signed link, no sign-in.
    "answer.show", "answer.answer",
})


def require_sign_in():
    """Runs before every request, after the CSRF check."""
    pending = session.get(PENDING_FORM_KEY)
    if pending and _pending_form_is_stale(pending):
        session.pop(PENDING_FORM_KEY, None)
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not signed_in():
        return sign_in_redirect()
    return None


def current_user() -> dict[str, Any]:
    user = session.get(USER_KEY)
    if not user:
        abort(401)
    return user


def has_role(*roles: str) -> bool:
    user = session.get(USER_KEY) or {}
    return bool(set(user.get("roles", [])) & set(roles))
