"""The browser login of Keycloak 26: authorization endpoint, login form, SSO cookies, logout.

Authlib's authorization-code grant validates each request; this module keeps what a browser sees:
Keycloak's redirect-URI rules, the login form bound to the `AUTH_SESSION_ID` cookie with a
single-use `session_code`, the SSO cookies, RP-initiated logout and Keycloak's error texts. The
pages are the templates in `templates/`, their texts in `messages.json`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Response, redirect, render_template, request
from joserfc import jwt
from joserfc.errors import JoseError

from .oauth import (
    ID_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    IdentityProvider,
    InvalidToken,
    Session,
    current,
)
from .realm import Client

log = logging.getLogger(__name__)

AUTH_SESSION_COOKIE, IDENTITY_COOKIE, SESSION_COOKIE = (
    "AUTH_SESSION_ID", "KEYCLOAK_IDENTITY", "KEYCLOAK_SESSION")
# The execution id of the username/password form in the browser flow (fixed, like an import).
LOGIN_EXECUTION = str(uuid.uuid5(uuid.NAMESPACE_URL, "buendnis-idp/auth-username-password-form"))
TEXT: dict[str, dict[str, str]] = json.loads(
    Path(__file__).with_name("messages.json").read_text(encoding="utf-8"))
HEADERS = {
    "Content-Type": "text/html;charset=utf-8",
    "Cache-Control": "no-store, must-revalidate, max-age=0",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "none",
}
# Percent-encoded characters that change how a URL is split (slash, backslash, dot, %, @, :, ?,
# #, NUL): a redirect URI hiding one in its path is refused rather than decoded one way here and
# another way by the browser (http://127.0.0.1:8090%2F@evil.example/cb).
_ENCODED_DELIMITER = re.compile(r"%(?:2f|5c|2e|25|40|3a|3f|23|00)", re.IGNORECASE)


# --- redirect URIs (Keycloak's RedirectUtils) ---------------------------------------------------


def _refused(uri: str) -> bool:
    """Anything a browser might read differently from a plain string comparison."""
    if "\\" in uri or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return True
    try:
        parts = urlsplit(uri)
        _ = parts.port  # a malformed port raises ValueError
    except ValueError:
        return True
    return (not parts.scheme or not parts.netloc or "@" in parts.netloc or "%" in parts.netloc
            or bool(_ENCODED_DELIMITER.search(parts.path))
            or any(segment in (".", "..") for segment in parts.path.split("/")))


def _match(valid_uris: Iterable[str], uri: str) -> bool:
    """Keycloak's rule on the string as sent: equal, or a prefix of it when the pattern ends in
    ``*`` (query and fragment then not compared); the authority is always compared whole."""
    for valid in valid_uris:
        if valid.endswith("*") and "?" not in valid:
            bare, prefix = uri.split("?", 1)[0].split("#", 1)[0], valid[:-1]
            if urlsplit(bare).netloc == urlsplit(prefix).netloc and (
                    bare.startswith(prefix) or (prefix.endswith("/") and bare == prefix[:-1])):
                return True
        elif valid == uri:
            return True
    return False


def verify_redirect_uri(redirect_uri: str | None, valid_uris: Iterable[str]) -> str | None:
    """The redirect URI exactly as sent, or None when it does not match the client's patterns
    or could be read differently by a browser."""
    valid = [v for v in valid_uris if v]
    if not redirect_uri or not valid or _refused(redirect_uri):
        return None
    if "*" in valid or _match(valid, redirect_uri):
        return redirect_uri
    parts = urlsplit(redirect_uri)
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and parts.port:
        # RFC 8252: a loopback redirect may use any port when the pattern names none.
        bare = urlunsplit((parts.scheme, parts.hostname, parts.path, parts.query, parts.fragment))
        if _match([v for v in valid if urlsplit(v.rstrip("*")).port is None], bare):
            return redirect_uri
    return None


def post_logout_redirect_uris(client: Client) -> list[str]:
    """`post.logout.redirect.uris` ("##"-separated); "+" means the client's redirect URIs."""
    uris: list[str] = []
    for item in (client.attributes.get("post.logout.redirect.uris") or "").split("##"):
        item = item.strip()
        uris += list(client.redirect_uris) if item == "+" else [item] if item not in ("", "-") \
            else []
    return uris


# --- pages, cookies and the login transaction ---------------------------------------------------


def _locale(ui_locales: str | None = None) -> str:
    """The first of `ui_locales`, else of Accept-Language, that the pages speak (default en)."""
    for source in (ui_locales or "", request.headers.get("Accept-Language") or ""):
        for item in source.replace(",", " ").split():
            if (tag := item.split(";", 1)[0].strip().lower().split("-", 1)[0]) in TEXT:
                return tag
    return "en"


def _page(template: str, locale: str, title: str, status: int = 200, **context: Any) -> Response:
    """A page in `locale`, with the development banner in the other language too."""
    other = "de" if locale == "en" else "en"
    html = render_template(template, locale=locale, other=other, t=TEXT[locale],
                           other_banner=TEXT[other]["banner"], title=TEXT[locale][title],
                           **context)
    return Response(html, status=status, headers=HEADERS)


def _error(locale: str, message: str) -> Response:
    return _page("message.html", locale, "error_title", 400, message=message)


def _cookie(response: Response, name: str, value: str | None) -> None:
    options = {"path": f"/realms/{current().realm.name}/", "httponly": True, "samesite": "Lax",
               "secure": request.is_secure}
    if value is None:
        response.delete_cookie(name, **options)
    else:
        response.set_cookie(name, value, **options)


def _cookie_session(idp: IdentityProvider) -> Session | None:
    """The SSO session the browser's identity cookie (HMAC-signed) names, while it is active."""
    try:
        claims = jwt.decode(request.cookies.get(IDENTITY_COOKIE) or "", idp.cookie_key,
                            algorithms=["HS512"]).claims
    except (JoseError, ValueError, TypeError):
        return None
    return idp.active_session(claims.get("sid"))  # the key is this process's: no other checks


@dataclass
class LoginTransaction:
    """Keycloak's authentication session tab: one login form, bound to the browser's cookie."""

    tab_id: str
    root_id: str
    grant: Any  # Authlib's validated authorization-code grant
    locale: str
    auth_url: str  # to restart the login from the beginning
    session_code: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    attempted_username: str = ""


# --- views --------------------------------------------------------------------------------------


def authorize() -> Response:
    """`/auth`: errors before the redirect URI is known are pages, later ones go to the client."""
    idp = current()
    params = (request.form if request.method == "POST" else request.args).to_dict()
    locale = _locale(params.get("ui_locales"))
    if not params.get("client_id"):
        return _error(locale, "Missing parameter: client_id")
    client = idp.query_client(params["client_id"])
    if client is None:
        return _error(locale, "Client not found.")
    redirect_uri = verify_redirect_uri(params.get("redirect_uri"), client.redirect_uris)
    if redirect_uri is None:  # never redirect to an address the client has not registered
        log.info("authorization request of client %s: invalid redirect_uri", client.client_id)
        return _error(locale, "Invalid parameter: redirect_uri")
    fragment = params.get("response_mode") == "fragment"

    def refuse(error: str, description: str | None = None, in_fragment: bool = False):
        log.info("authorization request of client %s refused: %s", client.client_id, error)
        answer = [("error", error)] + ([("error_description", description)] if description else [])
        answer += [("state", params["state"])] if params.get("state") is not None else []
        return idp.handle_response(*idp.to_client(client, redirect_uri, answer,
                                                  fragment or in_fragment))

    types = set((params.get("response_type") or "").split())
    if not types:
        return refuse("invalid_request", "Missing parameter: response_type")
    if types & {"token", "id_token"}:  # implicit and hybrid flows are off in the realm
        return refuse("unauthorized_client", "Client is not allowed to initiate browser login "
                      "with given response_type. Implicit flow is disabled for the client.", True)
    if types != {"code"}:
        return refuse("unsupported_response_type")
    oauth_request = idp.create_oauth2_request(None)
    oauth_request.payload = BasicOAuth2Payload(params)  # kept: the grant outlives this request
    try:  # Authlib: client, redirect URI, response type, scope, PKCE
        grant = idp.get_consent_grant(oauth_request)
    except OAuth2Error as error:
        return refuse(error.error, error.description)

    prompt = (params.get("prompt") or "").split()
    max_age = int(params["max_age"]) if params.get("max_age", "").isdigit() else None
    session = _cookie_session(idp)
    user = idp.realm.user_by_id(session.user_id) if session else None
    if session is not None and user is not None and user["enabled"] and "login" not in prompt and (
            max_age is None or idp.now() - session.notes["AUTH_TIME"] <= max_age):
        log.info("client %s: user %s signed in by SSO cookie", client.client_id, user["id"])
        return _complete(idp, grant, session, "0")
    if "none" in prompt:
        return refuse("login_required")
    root_id = request.cookies.get(AUTH_SESSION_COOKIE) or secrets.token_urlsafe(24)
    kept = [(k, v) for k, v in params.items() if k != "ui_locales"]
    tx = LoginTransaction(secrets.token_urlsafe(8), root_id, grant, locale,
                          f"{idp.endpoint('auth')}?{urlencode(kept)}")
    idp.put(idp.transactions, tx.tab_id, tx, idp.realm.setting("accessCodeLifespanLogin", 1800))
    response = _login_form(idp, tx, params.get("login_hint") or "")
    _cookie(response, AUTH_SESSION_COOKIE, root_id)
    return response


def _login_form(idp: IdentityProvider, tx: LoginTransaction, username: str = "",
                error: str | None = None) -> Response:
    query = urlencode({"session_code": tx.session_code, "execution": LOGIN_EXECUTION,
                       "client_id": tx.grant.request.client.client_id, "tab_id": tx.tab_id})
    return _page("login.html", tx.locale, "title", username=username, error=error,
                 action=f"{idp.issuer}/login-actions/authenticate?{query}",
                 restart_url=tx.auth_url)


def _complete(idp: IdentityProvider, grant: Any, session: Session, acr: str) -> Response:
    """Authlib's authorization response, with Keycloak's parameters (see oauth.py)."""
    session.last_refresh = idp.now()
    return idp.create_authorization_response(grant.request, (session, acr), grant)


def login_action() -> Response:
    """The login form's post: the username and password of the browser's login transaction."""
    idp, args, locale = current(), request.args, _locale()
    root_id = request.cookies.get(AUTH_SESSION_COOKIE)
    if not root_id:
        return _error(locale, "Cookie not found. Please make sure cookies are enabled in your "
                      "browser.")
    tx = idp.get(idp.transactions, args.get("tab_id"))
    if tx is None or not hmac.compare_digest(tx.root_id.encode(), root_id.encode()):
        return _error(locale, "Your login attempt timed out. Login will start from the "
                      "beginning.")
    locale, client = tx.locale, tx.grant.request.client
    if args.get("client_id") != client.client_id:
        return _error(locale, "Client not found.")
    code, tx.session_code = tx.session_code, secrets.token_urlsafe(32)  # single use
    if request.method == "GET":  # a reload shows the form again with a fresh code
        return _login_form(idp, tx, tx.attempted_username)
    if args.get("execution") != LOGIN_EXECUTION or not hmac.compare_digest(
            (args.get("session_code") or "").encode(), code.encode()):
        # A stale or forged form: only the rendered page knows the current code.
        return _page("message.html", locale, "expired_title",
                     restart_url=f"{tx.auth_url}&ui_locales={locale}")

    username = tx.attempted_username = (request.form.get("username") or "").strip()
    user, problem = idp.realm.check_login(username, request.form.get("password") or "")
    if problem is not None:
        log.info("browser login for client %s refused: %s", client.client_id, problem)
        return _login_form(idp, tx, username, TEXT[locale][problem])
    session = _cookie_session(idp)
    if session is not None and session.user_id != user["id"]:
        other = idp.realm.user_by_id(session.user_id)
        return _error(locale, f"You are already authenticated as different user "
                      f"'{other['username'] if other else session.user_id}' in this session. "
                      "Please sign out first.")
    if session is None:
        session = idp.start_session(user)
    else:
        session.notes["AUTH_TIME"] = idp.now()
    idp.get(idp.transactions, tx.tab_id, pop=True)
    log.info("browser login for client %s: user %s logged in", client.client_id, user["id"])
    response = _complete(idp, tx.grant, session, "1")
    _cookie(response, IDENTITY_COOKIE, jwt.encode({"alg": "HS512"}, {
        "iat": idp.now(), "jti": str(uuid.uuid4()), "iss": idp.issuer, "sub": session.user_id,
        "typ": "Serialized-ID", "sid": session.id}, idp.cookie_key, algorithms=["HS512"]))
    # KEYCLOAK_SESSION in Keycloak 26: a SHA-256 of the session id, not the id itself.
    digest = hashlib.sha256(session.id.encode()).digest()
    _cookie(response, SESSION_COOKIE, base64.urlsafe_b64encode(digest).decode().rstrip("="))
    return response


def logout() -> Response | tuple[str, int]:
    """RP-initiated logout (GET or form POST) as Keycloak 26 answers it, or python-keycloak's
    logout with a refresh token (204, also when the session has already ended)."""
    idp = current()
    if request.method == "POST" and "refresh_token" in request.form:
        client = idp.authenticate_client()
        try:
            claims = idp.verify(request.form["refresh_token"], REFRESH_TOKEN_TYPE)
        except InvalidToken:
            claims = {}
        if claims.get("azp") != client.client_id:
            raise InvalidGrantError("Invalid refresh token")
        idp.end_session(claims["sid"])
        return "", 204
    params = request.form if request.method == "POST" else request.args
    locale = _locale(params.get("ui_locales"))
    hint, client_id = params.get("id_token_hint"), params.get("client_id")
    redirect_param, state = params.get("post_logout_redirect_uri"), params.get("state")
    if redirect_param and not hint and not client_id:
        return _error(locale, "Missing parameter: id_token_hint")
    claims = None
    if hint:
        try:
            claims = idp.verify(hint, ID_TOKEN_TYPE, expiry=False)
        except InvalidToken:
            return _error(locale, "Invalid parameter: id_token_hint")
        if client_id and claims.get("azp") != client_id:
            return _error(locale, "Invalid parameter: client_id")
    client = idp.realm.client(client_id or (claims or {}).get("azp"))
    if (client_id or claims) and client is None:
        return _error(locale, "Client not found.")
    redirect_uri = None
    if redirect_param:
        redirect_uri = verify_redirect_uri(redirect_param, post_logout_redirect_uris(client))
        if redirect_uri is None:
            return _error(locale, "Invalid redirect uri")
    cookie_session = _cookie_session(idp)
    if claims is None:  # without a valid hint Keycloak asks the user to confirm
        code = secrets.token_urlsafe(32)
        idp.put(idp.confirmations, code, (cookie_session.id if cookie_session else None, state,
                                          redirect_uri, locale),
                idp.realm.setting("accessCodeLifespanLogin", 1800))
        return _page("message.html", locale, "logout_title", session_code=code,
                     action=idp.endpoint("logout/logout-confirm"))
    for session_id in (claims.get("sid"), cookie_session.id if cookie_session else None):
        idp.end_session(session_id)
    return _logged_out(locale, redirect_uri, state)


def logout_confirm() -> Response:
    idp = current()
    confirmation = idp.get(idp.confirmations, request.form.get("session_code"), pop=True)
    if confirmation is None:
        return _error(_locale(), "Logout failed")
    session_id, state, redirect_uri, locale = confirmation
    cookie_session = _cookie_session(idp)
    if cookie_session is not None and cookie_session.id == session_id:
        idp.end_session(cookie_session.id)
    return _logged_out(locale, redirect_uri, state)


def _logged_out(locale: str, redirect_uri: str | None, state: str | None) -> Response:
    if redirect_uri is None:
        response = _page("message.html", locale, "logged_out")
    else:
        response = redirect(add_params_to_uri(redirect_uri, [("state", state)] if state else []))
    for name in (IDENTITY_COOKIE, SESSION_COOKIE):
        _cookie(response, name, None)
    return response
