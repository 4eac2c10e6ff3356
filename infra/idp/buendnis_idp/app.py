"""The Flask application: Keycloak's URL layout and JSON for one realm, read from a realm file.

Token, introspection and the browser's code grant are Authlib's authorization server
(oauth.py); this module wires them to Keycloak's paths and answers the rest of what
`python-keycloak` and OIDC client libraries ask: discovery, keys, userinfo and logout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from . import browser
from .claims import USERINFO, ClaimContext, apply_mappers, resolve_client_scopes
from .oauth import AUTH_METHODS, KeycloakError, Server, service_account_notes
from .realm import Realm, Rep, load_realm
from .tokens import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, InvalidToken, TokenService

log = logging.getLogger(__name__)
EXTENSION = "buendnis_idp"


class IdentityProvider(TokenService, browser.BrowserState):
    """What the app knows: `app.extensions["buendnis_idp"]`; item access works too."""

    def __init__(self, realm: Realm, signing_key_pem: bytes | None, issuer_base: str) -> None:
        TokenService.__init__(self, realm, signing_key_pem, f"{issuer_base}/realms/{realm.name}")
        browser.BrowserState.__init__(self)
        self.issuer_base, self.server = issuer_base, Server(self)

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"

    def token_user(self, claims: dict[str, Any]) -> Rep | None:
        """The enabled user a token names: a realm user, or its client's service account."""
        client = self.realm.client(claims.get("azp"))
        user = self.realm.user_by_id(claims.get("sub")) or (
            client and self.realm.service_account_user(client))
        return user if user and user["id"] == claims.get("sub") and user["enabled"] else None

    def session_holds(self, claims: dict[str, Any]) -> bool:
        """A token of a session is valid only while the session holds the token's client."""
        if not claims.get("sid") and claims.get("typ") != REFRESH_TOKEN_TYPE:
            return True
        session = self.active_session(claims.get("sid"))
        return session is not None and claims.get("azp") in session.clients


def create_app(realm_file: str | Path, *, issuer_base: str,
               signing_key_pem: bytes | None = None) -> Flask:
    """Build the identity provider for the realm in `realm_file`; tokens carry
    `<issuer_base>/realms/<realm>` as issuer. Without `signing_key_pem` a new RSA key is made."""
    realm, base = load_realm(realm_file), issuer_base.rstrip("/")
    app = Flask(__name__)
    app.json.sort_keys = False  # keep Keycloak's field order in responses
    app.extensions[EXTENSION] = IdentityProvider(realm, signing_key_pem, base)
    app.url_value_preprocessor(_check_realm)
    oidc = "/realms/<realm>/protocol/openid-connect"
    for path, view, methods in (
        ("/", _root, ["GET"]),
        ("/health/ready", lambda: jsonify(status="UP"), ["GET"]),
        ("/realms/<realm>", _realm_info, ["GET"]),
        ("/realms/<realm>/.well-known/openid-configuration", _discovery, ["GET"]),
        (f"{oidc}/certs", lambda: jsonify(keys=[_idp().jwk]), ["GET"]),
        (f"{oidc}/token", lambda: _idp().server.create_token_response(), ["POST"]),
        (f"{oidc}/token/introspect",
         lambda: _idp().server.create_endpoint_response("introspection"), ["POST"]),
        (f"{oidc}/userinfo", _userinfo, ["GET", "POST"]),
        (f"{oidc}/logout", _logout, ["GET", "POST"]),
        (f"{oidc}/logout/logout-confirm", browser.logout_confirm, ["POST"]),
        (f"{oidc}/auth", browser.authorize, ["GET", "POST"]),
        ("/realms/<realm>/login-actions/authenticate", browser.login_action, ["GET", "POST"]),
    ):
        app.add_url_rule(path, path, view, methods=methods)
    app.register_error_handler(OAuth2Error, _error)
    app.register_error_handler(HTTPException, lambda exc: (jsonify(
        error="Unable to find matching target resource method" if exc.code == 404 else exc.name),
        exc.code or 500))
    log.info("realm %s loaded: %d users, %d organisations, %d clients", realm.name,
             len(realm.users), len(realm.organizations), len(realm.clients))
    return app


def _idp() -> IdentityProvider:
    return current_app.extensions[EXTENSION]


def _error(exc: OAuth2Error):
    status, body, headers = exc()
    return jsonify(body), status, headers


def _check_realm(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None and "realm" in values:
        if values.pop("realm") != _idp().realm.name or not _idp().realm.enabled:
            raise KeycloakError(404, "Realm does not exist")  # as Keycloak answers


def _root():
    idp = _idp()
    return jsonify(service="buendnis-idp", realm=idp.realm.name, issuer=idp.issuer,
                   warning="Development identity provider. Not for production.",
                   discovery=f"{idp.issuer}/.well-known/openid-configuration")


def _realm_info():
    idp = _idp()
    return jsonify({"realm": idp.realm.name, "public_key": idp.public_key_b64,
                    "token-service": f"{idp.issuer}/protocol/openid-connect",
                    "account-service": f"{idp.issuer}/account", "tokens-not-before": 0})


def _discovery():
    idp, methods = _idp(), ["client_secret_basic", "client_secret_post"]
    return jsonify({
        "issuer": idp.issuer, "authorization_endpoint": idp.endpoint("auth"),
        "token_endpoint": idp.endpoint("token"),
        "introspection_endpoint": idp.endpoint("token/introspect"),
        "userinfo_endpoint": idp.endpoint("userinfo"),
        "end_session_endpoint": idp.endpoint("logout"), "jwks_uri": idp.endpoint("certs"),
        "grant_types_supported": ["authorization_code", "refresh_token", "password",
                                  "client_credentials"],
        "response_types_supported": ["code"], "response_modes_supported": ["query", "fragment"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"], "prompt_values_supported": ["none", "login"],
        "scopes_supported": ["openid", *sorted(idp.realm.client_scopes)],
        "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "given_name",
                             "family_name", "preferred_username", "email", "email_verified",
                             "acr", "organization"],
        "claims_parameter_supported": False, "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "backchannel_logout_supported": False, "frontchannel_logout_supported": False,
        "authorization_response_iss_parameter_supported": True,
    })


def _userinfo():
    idp = _idp()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else request.form.get("access_token", "")
    try:
        claims = idp.verify(token, ACCESS_TOKEN_TYPE)
    except InvalidToken:
        claims = {}
    user, client = idp.token_user(claims), idp.realm.client(claims.get("azp"))
    if user is None or client is None or not idp.session_holds(claims):
        error, text = ("invalid_token", "Token verification failed") if token else (
            "invalid_request", "Token not provided")
        raise KeycloakError(401, error, text, [("WWW-Authenticate", f'Bearer realm="'
                            f'{idp.realm.name}", error="{error}", error_description="{text}"')])
    if session := idp.active_session(claims.get("sid")):
        scopes, _, requested = idp.client_state(session, client.client_id)
        notes = session.notes
    else:  # a service account's token: the scopes the token names
        known = {"openid", *client.default_scopes, *client.optional_scopes}
        requested = " ".join(s for s in claims.get("scope", "").split() if s in known)
        scopes = resolve_client_scopes(idp.realm, client, requested)[0]
        notes = service_account_notes(client)
    ctx = ClaimContext(idp.realm, client, user, scopes, requested, notes)
    return jsonify(apply_mappers(USERINFO, {"sub": user["id"]}, ctx))


def _logout():
    """The browser's RP-initiated logout, or python-keycloak's logout with a refresh token."""
    form = request.form
    browser_params = ("id_token_hint", "post_logout_redirect_uri", "state", "ui_locales")
    if request.method == "GET" or not ("refresh_token" in form or request.authorization) and (
            "client_id" not in form or any(p in form for p in browser_params)):
        return browser.logout()
    idp = _idp()
    client = idp.server.authenticate_client(idp.server.create_oauth2_request(None), AUTH_METHODS)
    if not form.get("refresh_token"):
        raise KeycloakError(400, "invalid_request", "No refresh token")
    try:
        claims = idp.verify(form["refresh_token"], REFRESH_TOKEN_TYPE)
    except InvalidToken:
        raise KeycloakError(400, "invalid_grant", "Invalid refresh token") from None
    if claims.get("azp") != client.client_id:
        raise KeycloakError(400, "invalid_grant", "Invalid refresh token")
    # Keycloak answers 204 even when the session has already ended.
    if idp.end_session(claims["sid"]) is not None:
        log.info("logout for client %s: session ended", client.client_id)
    return "", 204
