"""The browser login of Keycloak 26: authorization endpoint, login form, code grant, browser logout.

URLs, parameters, redirects and error texts follow Keycloak 26 (AuthorizationEndpoint,
AuthorizationEndpointChecker, AuthenticationProcessor, AuthorizationCodeGrantType, LogoutEndpoint),
so that an OIDC client library signs in here exactly as against Keycloak.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from flask import Blueprint, Response, redirect, request

from .app import IdentityProvider, _fail, _idp
from .browser import (
    AUTH_SESSION_COOKIE,
    IDENTITY_COOKIE,
    LOGIN_EXECUTION,
    SESSION_COOKIE,
    AuthRequest,
    LoginTransaction,
    LogoutConfirmation,
    add_params,
    pkce_request_error,
    pkce_verify_error,
    post_logout_redirect_uris,
    session_cookie_value,
    verify_redirect_uri,
)
from .claims import InvalidScope, resolve_client_scopes
from .pages import (
    LOCALES,
    error_page,
    expired_page,
    logged_out_page,
    login_page,
    logout_confirm_page,
    pick_locale,
    text,
)
from .realm import Client, User, verify_password
from .tokens import ID_TOKEN_TYPE, Session

log = logging.getLogger(__name__)

# Keycloak's security headers for its login pages.
_PAGE_HEADERS = {
    "Content-Type": "text/html;charset=utf-8",
    "Cache-Control": "no-store, must-revalidate, max-age=0",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "none",
}

_AUTH_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "response_mode",
    "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "ui_locales",
)  # fmt: skip


def register_browser_routes(bp: Blueprint, oidc: str) -> None:
    bp.add_url_rule(f"{oidc}/auth", "auth", _auth, methods=["GET", "POST"])
    bp.add_url_rule(
        "/realms/<realm>/login-actions/authenticate",
        "login_action",
        _login_action,
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        f"{oidc}/logout/logout-confirm", "logout_confirm", _logout_confirm, methods=["POST"]
    )


# --- responses --------------------------------------------------------------------------------


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, headers=_PAGE_HEADERS)


def _error(locale: str, message: str, status: int = 400) -> Response:
    return _html(error_page(locale, message), status)


def _cookie_path(idp: IdentityProvider) -> str:
    return f"/realms/{idp.realm.name}/"


def _set_cookie(response: Response, idp: IdentityProvider, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=_cookie_path(idp),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )


def _clear_sso_cookies(response: Response, idp: IdentityProvider) -> None:
    for name in (IDENTITY_COOKIE, SESSION_COOKIE):
        response.delete_cookie(
            name, path=_cookie_path(idp), httponly=True, samesite="Lax", secure=request.is_secure
        )


def _set_sso_cookies(response: Response, idp: IdentityProvider, session: Session) -> None:
    _set_cookie(response, idp, IDENTITY_COOKIE, idp.browser.identity_cookie(session))
    _set_cookie(response, idp, SESSION_COOKIE, session_cookie_value(session))


def _to_client(
    idp: IdentityProvider,
    client: Client,
    redirect_uri: str,
    params: list[tuple[str, str]],
    *,
    fragment: bool = False,
) -> Response:
    if client.attributes.get("exclude.issuer.from.auth.response") != "true":
        params.append(("iss", idp.issuer))
    response = redirect(add_params(redirect_uri, params, fragment=fragment), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_to_client(
    idp: IdentityProvider,
    client: Client,
    redirect_uri: str,
    state: str | None,
    error: str,
    description: str | None = None,
    *,
    fragment: bool = False,
) -> Response:
    params = [("error", error)]
    if description is not None:
        params.append(("error_description", description))
    if state is not None:
        params.append(("state", state))
    log.info("authorization request of client %s refused: %s", client.client_id, error)
    return _to_client(idp, client, redirect_uri, params, fragment=fragment)


# --- authorization endpoint -------------------------------------------------------------------


def _auth() -> Response:
    idp = _idp()
    params: Mapping[str, str] = request.form if request.method == "POST" else request.args
    locale = pick_locale(params.get("ui_locales"), request.headers.get("Accept-Language"))

    client_id = params.get("client_id")
    if not client_id:
        return _error(locale, "Missing parameter: client_id")
    client = idp.realm.client(client_id)
    if client is None:
        return _error(locale, "Client not found.")
    if not client.enabled:
        return _error(locale, "Client disabled.")
    if client.bearer_only:
        return _error(locale, "Bearer-only applications are not allowed to initiate browser login.")

    scope = params.get("scope") or ""
    redirect_param = params.get("redirect_uri")
    redirect_uri = verify_redirect_uri(
        redirect_param, client.redirect_uris, require="openid" in scope.split()
    )
    if redirect_uri is None:
        # Never redirect to an address the client has not registered.
        log.info("authorization request of client %s: invalid redirect_uri", client.client_id)
        return _error(locale, "Invalid parameter: redirect_uri")

    state = params.get("state")

    def refuse(error: str, description: str | None = None, *, fragment: bool = False) -> Response:
        return _error_to_client(
            idp, client, redirect_uri, state, error, description, fragment=fragment
        )

    response_type = params.get("response_type")
    if not response_type:
        return refuse("invalid_request", "Missing parameter: response_type")
    types = set(response_type.split())
    if not types or not types <= {"code", "token", "id_token", "none"}:
        return refuse("unsupported_response_type")
    implicit = bool(types & {"token", "id_token"})
    if implicit:
        # The implicit and hybrid flows are off for every client of the realm (as in Keycloak
        # when implicitFlowEnabled is false); their errors go in the fragment.
        return refuse(
            "unauthorized_client",
            "Client is not allowed to initiate browser login with given response_type. "
            "Implicit flow is disabled for the client.",
            fragment=True,
        )
    if types != {"code"}:
        return refuse("unsupported_response_type")
    if not client.standard_flow:
        return refuse(
            "unauthorized_client",
            "Client is not allowed to initiate browser login with given response_type. "
            "Standard flow is disabled for the client.",
        )
    response_mode = params.get("response_mode") or "query"
    if response_mode not in ("query", "fragment"):
        # Keycloak also knows form_post and the JARM modes; this provider does not.
        return refuse("invalid_request", "Invalid parameter: response_mode")
    fragment = response_mode == "fragment"

    try:
        resolve_client_scopes(idp.realm, client, scope)
    except InvalidScope:
        return refuse("invalid_scope", f"Invalid scopes: {scope}", fragment=fragment)

    prompt = tuple((params.get("prompt") or "").split())
    if "none" in prompt and len(prompt) > 1:
        return refuse("invalid_request", "Invalid parameter: prompt", fragment=fragment)
    max_age: int | None = None
    if params.get("max_age"):
        try:
            max_age = int(params["max_age"])
        except ValueError:
            max_age = None

    challenge_error, method = pkce_request_error(
        client, params.get("code_challenge"), params.get("code_challenge_method")
    )
    if challenge_error:
        return refuse("invalid_request", challenge_error, fragment=fragment)

    auth_request = AuthRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_param=redirect_param,
        response_mode=response_mode,
        scope=scope,
        state=state,
        nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge"),
        code_challenge_method=method,
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        locale=locale,
        auth_url=_auth_url(idp, params),
    )

    session = idp.browser.session_from_cookie(request.cookies.get(IDENTITY_COOKIE))
    user = idp.realm.user_by_id(session.user_id) if session is not None else None
    if session is not None and (user is None or not user.enabled):
        session = None
    if session is not None and "login" not in prompt and not _too_old(idp, session, max_age):
        log.info("client %s: user %s signed in by SSO cookie", client.client_id, session.user_id)
        return _complete(idp, client, session, auth_request, acr="0")
    if "none" in prompt:
        return refuse("login_required", fragment=fragment)

    root_id = request.cookies.get(AUTH_SESSION_COOKIE) or secrets.token_urlsafe(24)
    tx = idp.browser.begin(root_id, auth_request)
    response = _login_form(idp, tx, username=auth_request.login_hint or "")
    _set_cookie(response, idp, AUTH_SESSION_COOKIE, root_id)
    return response


def _auth_url(idp: IdentityProvider, params: Mapping[str, str]) -> str:
    kept = [(k, params[k]) for k in _AUTH_PARAMS if params.get(k) is not None]
    return f"{idp.endpoint('auth')}?{urlencode(kept)}"


def _too_old(idp: IdentityProvider, session: Session, max_age: int | None) -> bool:
    if max_age is None:
        return False
    auth_time = int(session.notes.get("AUTH_TIME", session.started))
    return idp.tokens.now() - auth_time > max_age


def _login_form(
    idp: IdentityProvider,
    tx: LoginTransaction,
    *,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    query = urlencode(
        {
            "session_code": tx.session_code,
            "execution": LOGIN_EXECUTION,
            "client_id": tx.request.client_id,
            "tab_id": tx.tab_id,
        }
    )
    action = f"{idp.issuer}/login-actions/authenticate?{query}"
    base, _, _ = tx.request.auth_url.partition("?")
    links = {}
    for lc in LOCALES:
        kept = [(k, v) for k, v in _query_pairs(tx.request.auth_url) if k != "ui_locales"]
        links[lc] = f"{base}?{urlencode([*kept, ('ui_locales', lc)])}"
    page = login_page(tx.request.locale, action, username=username, error=error, locale_links=links)
    return _html(page, status)


def _query_pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _complete(
    idp: IdentityProvider, client: Client, session: Session, req: AuthRequest, *, acr: str
) -> Response:
    """Keycloak's successful authorization response: state, session_state, iss, code."""
    scopes, openid = resolve_client_scopes(idp.realm, client, req.scope)
    idp.tokens.attach_client(session, client, scopes, openid, req.scope)
    session.last_refresh = idp.tokens.now()
    code = idp.browser.issue_code(session, client, req, acr)
    params: list[tuple[str, str]] = []
    if req.state is not None:
        params.append(("state", req.state))
    params.append(("session_state", session.id))
    if client.attributes.get("exclude.issuer.from.auth.response") != "true":
        params.append(("iss", idp.issuer))
    params.append(("code", code))
    location = add_params(req.redirect_uri, params, fragment=req.response_mode == "fragment")
    response = redirect(location, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- login form -------------------------------------------------------------------------------


def _login_action() -> Response:
    idp = _idp()
    args = request.args
    locale = pick_locale(None, request.headers.get("Accept-Language"))
    root_id = request.cookies.get(AUTH_SESSION_COOKIE)
    if not root_id:
        return _error(
            locale, "Cookie not found. Please make sure cookies are enabled in your browser."
        )
    tx = idp.browser.transaction(args.get("tab_id"), root_id)
    if tx is None:
        return _error(locale, "Your login attempt timed out. Login will start from the beginning.")
    locale = tx.request.locale
    client = idp.realm.client(tx.request.client_id)
    if client is None or args.get("client_id") != client.client_id:
        return _error(locale, "Client not found.")
    if request.method == "GET":
        # Keycloak shows the current step again (e.g. after a reload) with a fresh code.
        idp.browser.rotate(tx)
        return _login_form(idp, tx, username=tx.attempted_username)
    code = args.get("session_code") or ""
    if args.get("execution") != LOGIN_EXECUTION or not secrets.compare_digest(
        code.encode(), tx.session_code.encode()
    ):
        # A stale or forged form: the code is single-use and only the rendered page knows it.
        return _html(expired_page(locale, tx.request.auth_url))
    idp.browser.rotate(tx)

    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    tx.attempted_username = username
    user = idp.realm.user_by_login(username) if username else None
    if user is None or user.is_service_account or not verify_password(user, password):
        log.info("browser login for client %s: invalid user credentials", client.client_id)
        return _login_form(idp, tx, username=username, error=text(locale, "invalid"))
    if not user.enabled:
        return _login_form(idp, tx, username=username, error=text(locale, "disabled"))
    if user.required_actions or any(c.temporary for c in user.credentials if c.type == "password"):
        # Keycloak would now ask for the required actions; this provider cannot.
        return _login_form(idp, tx, username=username, error=text(locale, "not_set_up"))

    session = idp.browser.session_from_cookie(request.cookies.get(IDENTITY_COOKIE))
    if session is not None and session.user_id != user.id:
        other = idp.realm.user_by_id(session.user_id)
        name = other.username if other is not None else session.user_id
        return _error(
            locale,
            f"You are already authenticated as different user '{name}' in this session. "
            "Please sign out first.",
        )
    if session is None:
        session = _start_browser_session(idp, user, client, tx.request)
    else:
        session.notes["AUTH_TIME"] = idp.tokens.now()
    idp.browser.finish(tx)
    log.info("browser login for client %s: user %s logged in", client.client_id, user.id)
    response = _complete(idp, client, session, tx.request, acr="1")
    _set_sso_cookies(response, idp, session)
    return response


def _start_browser_session(
    idp: IdentityProvider, user: User, client: Client, req: AuthRequest
) -> Session:
    scopes, openid = resolve_client_scopes(idp.realm, client, req.scope)
    session = idp.tokens.start_session(user, client, scopes, openid, req.scope)
    session.notes["SSO"] = True
    return session


# --- token endpoint: authorization code -------------------------------------------------------


def authorization_code_grant(
    idp: IdentityProvider, client: Client, form: Mapping[str, str]
) -> dict[str, Any]:
    if not client.standard_flow:
        _fail(400, "unauthorized_client", "Client not allowed to exchange code")
    code = form.get("code")
    if not code:
        _fail(400, "invalid_request", "Missing parameter: code")
    status, data = idp.browser.redeem(code)
    if status == "used" and data is not None:
        # Keycloak: a code used twice detaches the client from the session, which revokes the
        # tokens issued for the first use.
        session = idp.tokens.active_session(data.session_id)
        if session is not None and session.clients.pop(data.client_id, None) is not None:
            log.warning(
                "authorization code of client %s used twice: its tokens are revoked",
                data.client_id,
            )
        _fail(400, "invalid_grant", "Code not valid")
    if status == "unknown" or data is None:
        _fail(400, "invalid_grant", "Code not valid")
    if status == "expired":
        _fail(400, "invalid_grant", "Code is expired")
    session = idp.tokens.active_session(data.session_id)
    if session is None:
        _fail(400, "invalid_grant", "Code not valid")
    if data.client_id != client.client_id:
        _fail(400, "invalid_grant", "Auth error")
    user = idp.realm.user_by_id(session.user_id)
    if user is None or not user.enabled:
        _fail(400, "invalid_grant", "User disabled")
    if data.redirect_uri_param is not None and form.get("redirect_uri") != data.redirect_uri_param:
        _fail(400, "invalid_grant", "Incorrect redirect_uri")
    pkce_error = pkce_verify_error(
        data.code_challenge, data.code_challenge_method, form.get("code_verifier")
    )
    if pkce_error:
        log.info("code exchange for client %s refused: %s", client.client_id, pkce_error)
        _fail(400, "invalid_grant", pkce_error)

    scopes, openid = resolve_client_scopes(idp.realm, client, data.scope)
    idp.tokens.attach_client(session, client, scopes, openid, data.scope)
    session.last_refresh = idp.tokens.now()
    log.info("code exchanged for client %s: user %s", client.client_id, user.id)
    return idp.tokens.issue(
        user=user,
        client=client,
        scopes=scopes,
        openid=openid,
        requested_scope=data.scope,
        session=session,
        notes={"ACR_LEVEL": data.acr},
        id_token_claims={"nonce": data.nonce} if data.nonce is not None else None,
    )


# --- browser logout ---------------------------------------------------------------------------


def _verify_id_token_hint(idp: IdentityProvider, token: str) -> dict[str, Any] | None:
    """Signature, issuer and type; like Keycloak, an expired ID token is still a valid hint."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != idp.kid:
            return None
        claims = jwt.decode(
            token,
            idp.private_key.public_key(),
            algorithms=["RS256"],
            issuer=idp.issuer,
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        return None
    return claims if claims.get("typ") == ID_TOKEN_TYPE else None


def browser_logout() -> Response:
    """RP-initiated logout (GET or form POST) as Keycloak 26 answers it."""
    idp = _idp()
    params: Mapping[str, str] = request.form if request.method == "POST" else request.args
    locale = pick_locale(params.get("ui_locales"), request.headers.get("Accept-Language"))
    hint = params.get("id_token_hint")
    redirect_param = params.get("post_logout_redirect_uri")
    state = params.get("state")
    client_id = params.get("client_id")
    if redirect_param and not hint and not client_id:
        return _error(locale, "Missing parameter: id_token_hint")

    claims = None
    if hint:
        claims = _verify_id_token_hint(idp, hint)
        if claims is None:
            return _error(locale, "Invalid parameter: id_token_hint")
        if client_id and claims.get("azp") != client_id:
            return _error(locale, "Invalid parameter: client_id")
    client = idp.realm.client(client_id or (claims or {}).get("azp"))
    if (client_id or claims) and client is None:
        return _error(locale, "Client not found.")

    redirect_uri = None
    if redirect_param:
        assert client is not None
        redirect_uri = verify_redirect_uri(redirect_param, post_logout_redirect_uris(client))
        if redirect_uri is None:
            return _error(locale, "Invalid redirect uri")

    cookie_session = idp.browser.session_from_cookie(request.cookies.get(IDENTITY_COOKIE))
    if claims is None:
        # Without a valid hint Keycloak asks the user to confirm.
        conf = LogoutConfirmation(
            code=secrets.token_urlsafe(32),
            session_id=cookie_session.id if cookie_session is not None else None,
            redirect_uri=redirect_uri,
            state=state,
            locale=locale,
            created=idp.tokens.now(),
        )
        idp.browser.confirmation(conf)
        action = idp.endpoint("logout/logout-confirm")
        return _html(logout_confirm_page(locale, action, conf.code))

    hinted = idp.tokens.active_session(claims.get("sid"))
    if hinted is not None and hinted.user_id == claims.get("sub"):
        _end_session(idp, hinted)
    if cookie_session is not None:
        _end_session(idp, cookie_session)
    return _logged_out(idp, locale, redirect_uri, state)


def _logout_confirm() -> Response:
    idp = _idp()
    locale = pick_locale(None, request.headers.get("Accept-Language"))
    conf = idp.browser.take_confirmation(request.form.get("session_code"))
    if conf is None:
        return _error(locale, "Logout failed")
    cookie_session = idp.browser.session_from_cookie(request.cookies.get(IDENTITY_COOKIE))
    if cookie_session is not None and cookie_session.id == conf.session_id:
        _end_session(idp, cookie_session)
    return _logged_out(idp, conf.locale, conf.redirect_uri, conf.state)


def _end_session(idp: IdentityProvider, session: Session) -> None:
    if idp.tokens.sessions.remove(session.id) is not None:
        log.info("browser logout: session of user %s ended", session.user_id)


def _logged_out(
    idp: IdentityProvider, locale: str, redirect_uri: str | None, state: str | None
) -> Response:
    if redirect_uri is not None:
        response = redirect(
            add_params(redirect_uri, [("state", state)] if state is not None else []), code=302
        )
    else:
        response = _html(logged_out_page(locale))
    _clear_sso_cookies(response, idp)
    return response
