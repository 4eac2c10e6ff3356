"""The Flask application: Keycloak's OIDC endpoints for one realm, read from a realm file."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote_plus, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .browser import BrowserState
from .claims import USERINFO, ClaimContext, InvalidScope, apply_mappers, resolve_client_scopes
from .realm import Client, ClientScope, Realm, User, load_realm, verify_password
from .tokens import (
    ACCESS_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    Clock,
    InvalidToken,
    Session,
    SigningKey,
    TokenService,
    generate_private_key,
    load_private_key,
)

log = logging.getLogger(__name__)

EXTENSION = "buendnis_idp"
INVALID_CLIENT = "Invalid client or Invalid client credentials"


class OAuthError(Exception):
    """An error answered with Keycloak's JSON error body."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(description or error)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})


class RealmNotFound(Exception):
    """A realm other than the one of the realm file: 404 as Keycloak answers."""


def _fail(status: int, error: str, description: str | None = None) -> NoReturn:
    raise OAuthError(status, error, description)


@dataclass
class IdentityProvider:
    """What the app knows: `app.extensions["buendnis_idp"]`; item access works too."""

    realm: Realm
    signing_key: SigningKey
    issuer_base: str
    issuer: str
    tokens: TokenService
    browser: BrowserState = field(init=False)

    def __post_init__(self) -> None:
        self.browser = BrowserState(self.tokens)
        self.browser.code_lifespan = self.realm.access_code_lifespan
        self.browser.login_lifespan = self.realm.access_code_lifespan_login

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return self.signing_key.private_key

    @property
    def kid(self) -> str:
        return self.signing_key.kid

    @property
    def clock(self) -> Clock:
        return self.tokens.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.tokens.clock = clock

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def issue_tokens(
        self, username: str, *, client_id: str = "buendnis-cli", scope: str = "openid"
    ) -> dict[str, Any]:
        """Log a user in without a password: a shortcut for tests of other components."""
        user = self.realm.user_by_login(username)
        client = self.realm.client(client_id)
        if user is None or client is None:
            raise KeyError(username if user is None else client_id)
        scopes, openid = resolve_client_scopes(self.realm, client, scope)
        session = self.tokens.start_session(user, client, scopes, openid, scope)
        return self.tokens.issue(
            user=user,
            client=client,
            scopes=scopes,
            openid=openid,
            requested_scope=scope,
            session=session,
        )

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"


def create_app(
    realm_file: str | Path, *, issuer_base: str, signing_key_pem: bytes | None = None
) -> Flask:
    """Build the identity provider for the realm in `realm_file`.

    `issuer_base` is the public base URL (e.g. `http://127.0.0.1:8080`); tokens carry
    `<issuer_base>/realms/<realm>` as issuer. Without `signing_key_pem` a new RSA 2048 key is made.
    """
    realm = load_realm(realm_file)
    private_key = load_private_key(signing_key_pem) if signing_key_pem else generate_private_key()
    signing_key = SigningKey.create(private_key, realm.name)
    base = issuer_base.rstrip("/")
    issuer = f"{base}/realms/{realm.name}"

    app = Flask(__name__)
    app.json.sort_keys = False  # keep Keycloak's field order in responses
    app.extensions[EXTENSION] = IdentityProvider(
        realm=realm,
        signing_key=signing_key,
        issuer_base=base,
        issuer=issuer,
        tokens=TokenService(realm, signing_key, issuer),
    )
    app.register_blueprint(_blueprint())
    _register_error_handlers(app)
    app.after_request(_cors_headers)
    log.info(
        "realm %s loaded: %d users, %d organisations, %d clients",
        realm.name,
        len(realm.users),
        len(realm.organizations),
        len(realm.clients),
    )
    return app


def _idp() -> IdentityProvider:
    return current_app.extensions[EXTENSION]


# --- routes ---------------------------------------------------------------------------------


def _blueprint() -> Blueprint:
    bp = Blueprint("idp", __name__)

    @bp.url_value_preprocessor
    def check_realm(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values is not None and "realm" in values:
            name = values.pop("realm")
            realm = _idp().realm
            if name != realm.name or not realm.enabled:
                raise RealmNotFound()

    bp.add_url_rule("/", "root", _root, methods=["GET"])
    bp.add_url_rule("/health/ready", "ready", _ready, methods=["GET"])
    bp.add_url_rule("/realms/<realm>", "realm_info", _realm_info, methods=["GET"])
    bp.add_url_rule(
        "/realms/<realm>/.well-known/openid-configuration", "discovery", _discovery, methods=["GET"]
    )
    oidc = "/realms/<realm>/protocol/openid-connect"
    bp.add_url_rule(f"{oidc}/certs", "certs", _certs, methods=["GET"])
    bp.add_url_rule(f"{oidc}/token", "token", _token, methods=["POST", "OPTIONS"])
    bp.add_url_rule(
        f"{oidc}/token/introspect", "introspect", _introspect, methods=["POST", "OPTIONS"]
    )
    bp.add_url_rule(f"{oidc}/userinfo", "userinfo", _userinfo, methods=["GET", "POST", "OPTIONS"])
    bp.add_url_rule(f"{oidc}/logout", "logout", _logout, methods=["GET", "POST", "OPTIONS"])
    from .login import authorization_code_grant, register_browser_routes

    register_browser_routes(bp, oidc)
    _GRANTS.setdefault("authorization_code", authorization_code_grant)
    return bp


def _root():
    idp = _idp()
    return jsonify(
        service="buendnis-idp",
        warning="Development identity provider. Not for production.",
        realm=idp.realm.name,
        issuer=idp.issuer,
        discovery=f"{idp.issuer}/.well-known/openid-configuration",
    )


def _ready():
    return jsonify(status="UP")


def _realm_info():
    idp = _idp()
    return jsonify(
        {
            "realm": idp.realm.name,
            "public_key": idp.signing_key.public_key_b64,
            "token-service": f"{idp.issuer}/protocol/openid-connect",
            "account-service": f"{idp.issuer}/account",
            "tokens-not-before": 0,
        }
    )


def _discovery():
    idp = _idp()
    scopes = ["openid"] + sorted(
        s.name for s in idp.realm.client_scopes.values() if s.protocol == "openid-connect"
    )
    auth_methods = ["client_secret_basic", "client_secret_post"]
    return jsonify(
        {
            "issuer": idp.issuer,
            "authorization_endpoint": idp.endpoint("auth"),
            "token_endpoint": idp.endpoint("token"),
            "introspection_endpoint": idp.endpoint("token/introspect"),
            "userinfo_endpoint": idp.endpoint("userinfo"),
            "end_session_endpoint": idp.endpoint("logout"),
            "jwks_uri": idp.endpoint("certs"),
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "password",
                "client_credentials",
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login"],
            "scopes_supported": scopes,
            "claims_supported": [
                "aud",
                "sub",
                "iss",
                "auth_time",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "email_verified",
                "acr",
                "organization",
            ],  # fmt: skip
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "backchannel_logout_supported": False,
            "frontchannel_logout_supported": False,
            "authorization_response_iss_parameter_supported": True,
        }
    )


def _certs():
    return jsonify({"keys": [_idp().signing_key.jwk]})


def _token():
    if request.method == "OPTIONS":
        return _preflight()
    idp = _idp()
    form = request.form
    grant_type = form.get("grant_type")
    if not grant_type:
        _fail(400, "invalid_request", "Missing form parameter: grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        _fail(400, "unsupported_grant_type", "Unsupported grant_type")
    client = _authenticate_client(idp.realm, form)
    body = handler(idp, client, form)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _password_grant(
    idp: IdentityProvider, client: Client, form: Mapping[str, str]
) -> dict[str, Any]:
    if not client.direct_access_grants:
        _fail(400, "unauthorized_client", "Client not allowed for direct access grants")
    scope_param = form.get("scope", "")
    scopes, openid = _scopes(idp.realm, client, scope_param)
    user = idp.realm.user_by_login(form.get("username", ""))
    if (
        user is None
        or user.is_service_account
        or not verify_password(user, form.get("password", ""))
    ):
        log.info("password grant refused for client %s: invalid user credentials", client.client_id)
        _fail(401, "invalid_grant", "Invalid user credentials")
    if not user.enabled:
        log.info(
            "password grant refused for client %s: user %s is disabled", client.client_id, user.id
        )
        _fail(400, "invalid_grant", "Account disabled")
    if user.required_actions or any(c.temporary for c in user.credentials if c.type == "password"):
        _fail(400, "invalid_grant", "Account is not fully set up")
    session = idp.tokens.start_session(user, client, scopes, openid, scope_param)
    log.info("password grant for client %s: user %s logged in", client.client_id, user.id)
    return idp.tokens.issue(
        user=user,
        client=client,
        scopes=scopes,
        openid=openid,
        requested_scope=scope_param,
        session=session,
    )


def _client_credentials_grant(
    idp: IdentityProvider, client: Client, form: Mapping[str, str]
) -> dict[str, Any]:
    if client.public:
        _fail(400, "unauthorized_client", "Public client not allowed to retrieve service account")
    if not client.service_accounts:
        _fail(400, "unauthorized_client", "Client not enabled to retrieve service account")
    user = idp.realm.service_account_user(client)
    if user is None or not user.enabled:
        _fail(400, "invalid_grant", "Account disabled")
    scope_param = form.get("scope", "")
    scopes, openid = _scopes(idp.realm, client, scope_param)
    address = request.remote_addr or ""
    notes = {"client_id": client.client_id, "clientHost": address, "clientAddress": address}
    session = None
    # Keycloak issues no refresh token (keeps no session) for client credentials unless asked to.
    if client.attributes.get("client_credentials.use_refresh_token") == "true":
        session = idp.tokens.start_session(user, client, scopes, openid, scope_param)
        session.notes.update(notes)
    log.info("client credentials grant for client %s", client.client_id)
    return idp.tokens.issue(
        user=user,
        client=client,
        scopes=scopes,
        openid=openid,
        requested_scope=scope_param,
        session=session,
        notes=notes,
    )


def _refresh_token_grant(
    idp: IdentityProvider, client: Client, form: Mapping[str, str]
) -> dict[str, Any]:
    token = form.get("refresh_token")
    if not token:
        _fail(400, "invalid_request", "Missing parameter: refresh_token")
    try:
        claims = idp.tokens.verify_refresh_token(token)
    except InvalidToken as exc:
        _fail(400, "invalid_grant", str(exc))
    if claims.get("azp") != client.client_id:
        _fail(
            400,
            "invalid_grant",
            "Invalid refresh token. Token client and authorized client don't match",
        )
    session = idp.tokens.active_session(claims.get("sid"))
    if session is None:
        _fail(400, "invalid_grant", "Session not active")
    if not session.has_client(client.client_id):
        _fail(400, "invalid_grant", "Session doesn't have required client")
    user = _session_user(idp, session)
    if user is None or not user.enabled:
        _fail(400, "invalid_grant", "User disabled")
    if idp.realm.revoke_refresh_token:
        if claims["jti"] in session.used_refresh_tokens:
            _fail(400, "invalid_grant", "Maximum allowed refresh token reuse exceeded")
        session.used_refresh_tokens.add(claims["jti"])
    session.last_refresh = idp.tokens.now()
    scopes, openid, requested = idp.tokens.client_state(session, client.client_id)
    return idp.tokens.issue(
        user=user,
        client=client,
        scopes=scopes,
        openid=openid,
        requested_scope=requested,
        session=session,
    )


_GRANTS = {
    "password": _password_grant,
    "client_credentials": _client_credentials_grant,
    "refresh_token": _refresh_token_grant,
}


def _introspect():
    if request.method == "OPTIONS":
        return _preflight()
    idp = _idp()
    client = _authenticate_client(idp.realm, request.form)
    if client.public:
        _fail(403, "invalid_request", "Client not allowed.")
    token = request.form.get("token")
    if not token:
        _fail(400, "invalid_request", "Token not provided.")
    return jsonify(_introspection(idp, token))


def _introspection(idp: IdentityProvider, token: str) -> dict[str, Any]:
    inactive = {"active": False}
    token_type = ACCESS_TOKEN_TYPE
    try:
        claims = idp.tokens.verify_access_token(token)
    except InvalidToken:
        try:
            claims = idp.tokens.verify_refresh_token(token)
            token_type = REFRESH_TOKEN_TYPE
        except InvalidToken:
            return inactive
    user = _token_user(idp, claims)
    if user is None or not user.enabled:
        return inactive
    if claims.get("sid") or token_type == REFRESH_TOKEN_TYPE:
        session = idp.tokens.active_session(claims.get("sid"))
        if session is None or not session.has_client(claims.get("azp")):
            return inactive
    return {
        **claims,
        "client_id": claims.get("azp"),
        "username": user.username,
        "token_type": token_type,
        "active": True,
    }


def _userinfo():
    if request.method == "OPTIONS":
        return _preflight()
    idp = _idp()
    token = _bearer_token()
    if not token:
        raise OAuthError(
            401,
            "invalid_request",
            "Token not provided",
            _www_authenticate(idp, "invalid_request", "Token not provided"),
        )
    try:
        claims = idp.tokens.verify_access_token(token)
    except InvalidToken:
        raise OAuthError(
            401,
            "invalid_token",
            "Token verification failed",
            _www_authenticate(idp, "invalid_token", "Token verification failed"),
        ) from None
    user = _token_user(idp, claims)
    client = idp.realm.client(claims.get("azp"))
    session = idp.tokens.active_session(claims.get("sid")) if claims.get("sid") else None
    if (
        user is None
        or not user.enabled
        or client is None
        or (claims.get("sid") and (session is None or not session.has_client(client.client_id)))
    ):
        raise OAuthError(
            401,
            "invalid_token",
            "Token verification failed",
            _www_authenticate(idp, "invalid_token", "Token verification failed"),
        )
    if session is not None:
        scopes: list[ClientScope]
        scopes, _, requested = idp.tokens.client_state(session, client.client_id)
        notes = dict(session.notes)
    else:
        requested = claims.get("scope", "")
        scopes, _ = resolve_client_scopes(
            idp.realm, client, _known_scopes(idp.realm, client, requested)
        )
        notes = {
            "client_id": client.client_id,
            "clientHost": request.remote_addr,
            "clientAddress": request.remote_addr,
        }
    info: dict[str, Any] = {"sub": user.id}
    apply_mappers(USERINFO, info, ClaimContext(idp.realm, client, user, scopes, requested, notes))
    return jsonify(info)


def _logout():
    if request.method == "OPTIONS":
        return _preflight()
    if _is_browser_logout():
        from .login import browser_logout

        return browser_logout()
    idp = _idp()
    client = _authenticate_client(idp.realm, request.form)
    token = request.form.get("refresh_token")
    if not token:
        _fail(400, "invalid_request", "No refresh token")
    try:
        claims = idp.tokens.verify_refresh_token(token)
    except InvalidToken:
        _fail(400, "invalid_grant", "Invalid refresh token")
    if claims.get("azp") != client.client_id:
        _fail(400, "invalid_grant", "Invalid refresh token")
    # Keycloak answers 204 even when the session has already ended.
    if idp.tokens.sessions.remove(claims["sid"]) is not None:
        log.info("logout for client %s: session ended", client.client_id)
    return "", 204


def _is_browser_logout() -> bool:
    """RP-initiated (browser) logout, or python-keycloak's logout with a refresh token?"""
    if request.method == "GET":
        return True
    form = request.form
    if "refresh_token" in form or request.authorization is not None:
        return False
    browser_params = ("id_token_hint", "post_logout_redirect_uri", "state", "ui_locales")
    return any(p in form for p in browser_params) or "client_id" not in form


# --- helpers --------------------------------------------------------------------------------


def _authenticate_client(realm: Realm, form: Mapping[str, str]) -> Client:
    """Client authentication like Keycloak's `client-secret` authenticator: Basic or form."""
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        # RFC 6749 2.3.1: client id and secret are form-urlencoded inside the Basic credentials.
        client_id = unquote_plus(auth.username or "")
        secret: str | None = unquote_plus(auth.password or "")
        if form.get("client_id") and form.get("client_id") != client_id:
            _fail(401, "invalid_client", INVALID_CLIENT)
    else:
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
    client = realm.client(client_id)
    if client is None or not client.enabled:
        log.info("client authentication failed: unknown or disabled client")
        _fail(401, "invalid_client", INVALID_CLIENT)
    if client.bearer_only:
        _fail(400, "unauthorized_client", "Bearer-only not allowed")
    if client.confidential:
        if client.authenticator_type != "client-secret":
            log.warning(
                "client %s uses authenticator %s, which is not supported here",
                client.client_id,
                client.authenticator_type,
            )
            _fail(401, "invalid_client", INVALID_CLIENT)
        if not client.check_secret(secret):
            log.info("client authentication failed for client %s: wrong secret", client.client_id)
            _fail(401, "invalid_client", INVALID_CLIENT)
    return client


def _scopes(realm: Realm, client: Client, scope_param: str) -> tuple[list[ClientScope], bool]:
    try:
        return resolve_client_scopes(realm, client, scope_param)
    except InvalidScope:
        _fail(400, "invalid_scope", f"Invalid scopes: {scope_param}")


def _known_scopes(realm: Realm, client: Client, scope: str) -> str:
    allowed = set(client.default_scopes) | set(client.optional_scopes) | {"openid"}
    return " ".join(s for s in scope.split() if s.split(":", 1)[0] in allowed)


def _session_user(idp: IdentityProvider, session: Session) -> User | None:
    user = idp.realm.user_by_id(session.user_id)
    if user is None and "client_id" in session.notes:
        client = idp.realm.client(session.notes["client_id"])
        user = idp.realm.service_account_user(client) if client else None
    return user


def _token_user(idp: IdentityProvider, claims: Mapping[str, Any]) -> User | None:
    user = idp.realm.user_by_id(claims.get("sub"))
    if user is None:
        client = idp.realm.client(claims.get("azp"))
        candidate = (
            idp.realm.service_account_user(client) if client and client.service_accounts else None
        )
        if candidate is not None and candidate.id == claims.get("sub"):
            user = candidate
    return user


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST":
        return request.form.get("access_token")
    return None


def _www_authenticate(idp: IdentityProvider, error: str, description: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": (
            f'Bearer realm="{idp.realm.name}", error="{error}", error_description="{description}"'
        )
    }


def _allowed_origins(realm: Realm) -> set[str]:
    origins: set[str] = set()
    for client in realm.clients.values():
        for origin in client.web_origins:
            if origin == "+":
                for uri in client.redirect_uris:
                    parts = urlsplit(uri)
                    if parts.scheme and parts.netloc:
                        origins.add(f"{parts.scheme}://{parts.netloc}")
            elif origin:
                origins.add(origin)
    return origins


def _preflight():
    return "", 200


def _cors_headers(response):
    origin = request.headers.get("Origin")
    if not origin or request.endpoint is None:
        return response
    endpoint = request.endpoint.rsplit(".", 1)[-1]
    if endpoint in {"discovery", "certs", "realm_info"}:
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response
    if endpoint in {"token", "introspect", "userinfo", "logout"}:
        allowed = _allowed_origins(_idp().realm)
        if origin in allowed or "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
                response.headers["Access-Control-Max-Age"] = "3600"
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(OAuthError)
    def oauth_error(exc: OAuthError):
        body: dict[str, str] = {"error": exc.error}
        if exc.description:
            body["error_description"] = exc.description
        response = jsonify(body)
        response.status_code = exc.status
        response.headers.update(exc.headers)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(RealmNotFound)
    def realm_not_found(exc: RealmNotFound):
        return jsonify(error="Realm does not exist"), 404

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 404:
            return jsonify(error="Unable to find matching target resource method"), 404
        return jsonify(error=exc.name), exc.code or 500
