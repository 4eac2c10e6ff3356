"""The Flask application and its server: Keycloak's URL layout and JSON for one realm.

Token, introspection and the browser's code grant are Authlib's (oauth.py, browser.py); this
module wires them to Keycloak's paths, answers discovery, keys and userinfo, and serves
the app on loopback only, with a request log without query strings (so no secret reaches it).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from . import browser
from .oauth import (
    ACCESS_TOKEN_TYPE,
    EXTENSION,
    IdentityProvider,
    InvalidToken,
    KeycloakError,
    current,
    service_account_notes,
)
from .realm import USERINFO, ClaimContext, apply_mappers, load_realm

log = logging.getLogger(__name__)


def create_app(realm_file: str | Path, *, issuer_base: str,
               signing_key_pem: bytes | None = None) -> Flask:
    """Build the identity provider for the realm in `realm_file`; tokens carry
    `<issuer_base>/realms/<realm>` as issuer. Without `signing_key_pem` a new RSA key is made."""
    realm = load_realm(realm_file)
    app = Flask(__name__)
    app.json.sort_keys = False  # keep Keycloak's field order in responses
    app.extensions[EXTENSION] = idp = IdentityProvider(realm, signing_key_pem,
                                                       issuer_base.rstrip("/"))
    app.url_value_preprocessor(_check_realm)
    oidc = "/realms/<realm>/protocol/openid-connect"
    for path, view, methods in (
        ("/health/ready", lambda: jsonify(status="UP"), ["GET"]),
        ("/realms/<realm>", _realm_info, ["GET"]),
        ("/realms/<realm>/.well-known/openid-configuration", _discovery, ["GET"]),
        (f"{oidc}/certs", lambda: jsonify(keys=[idp.jwk]), ["GET"]),
        (f"{oidc}/token", lambda: idp.create_token_response(), ["POST"]),
        (f"{oidc}/token/introspect", lambda: idp.create_endpoint_response("introspection"),
         ["POST"]),
        (f"{oidc}/userinfo", _userinfo, ["GET", "POST"]),
        (f"{oidc}/logout", browser.logout, ["GET", "POST"]),
        (f"{oidc}/logout/logout-confirm", browser.logout_confirm, ["POST"]),
        (f"{oidc}/auth", browser.authorize, ["GET", "POST"]),
        ("/realms/<realm>/login-actions/authenticate", browser.login_action, ["GET", "POST"]),
    ):
        app.add_url_rule(path, path, view, methods=methods)
    app.register_error_handler(OAuth2Error, lambda exc: idp.handle_error_response(None, exc))
    app.register_error_handler(HTTPException, lambda exc: (jsonify(
        error="Unable to find matching target resource method" if exc.code == 404 else exc.name),
        exc.code or 500))
    log.info("realm %s loaded: %d users, %d organisations, %d clients", realm.name,
             len(realm.users), len(realm.organizations), len(realm.clients))
    return app


def _check_realm(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and values.pop("realm", None) not in (None, current().realm.name):
        raise KeycloakError(404, "Realm does not exist")  # as Keycloak answers


def _realm_info():
    idp = current()
    return jsonify({"realm": idp.realm.name, "public_key": idp.public_key_b64,
                    "token-service": f"{idp.issuer}/protocol/openid-connect",
                    "account-service": f"{idp.issuer}/account", "tokens-not-before": 0})


def _discovery():
    idp, methods = current(), ["client_secret_basic", "client_secret_post"]
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
    idp = current()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else request.form.get("access_token", "")
    try:
        claims = idp.verify(token, ACCESS_TOKEN_TYPE)
    except InvalidToken:
        claims = {}
    user, client = idp.token_user(claims), idp.realm.client(claims.get("azp"))
    if user is None or client is None:
        refusal = InvalidTokenError("Token verification failed" if token else
                                    "Token not provided", realm=idp.realm.name)
        refusal.error = "invalid_token" if token else "invalid_request"  # as Keycloak answers
        raise refusal
    session = idp.active_session(claims.get("sid"))
    # A service account's token has no session: the scopes are those the token names.
    requested = session.clients[client.client_id] if session else claims.get("scope", "")
    notes = session.notes if session else service_account_notes(client)
    scopes = idp.realm.resolve_scopes(client, requested)[0]
    ctx = ClaimContext(idp.realm, client, user, scopes, notes)
    return jsonify(apply_mappers(USERINFO, {"sub": user["id"]}, ctx))


# --- serving ------------------------------------------------------------------------------------


def check_loopback(host: str) -> str:
    """Return the host if it is loopback (127.0.0.0/8, ::1, localhost), else raise ValueError."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return host
    address = ipaddress.ip_address(host)  # ValueError for a name
    if not address.is_loopback:
        raise ValueError(f"{host!r} is not a loopback address")
    return str(address)


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = (self.path or "").split("?", 1)[0]
        logging.getLogger("buendnis_idp.http").info("%s %s %s", self.command, path,
                                                    getattr(code, "value", code))


class RunningServer(ThreadedWSGIServer):
    """The werkzeug server of one provider, bound first: the issuer needs the port it got."""

    thread: threading.Thread | None = None
    idp = property(lambda self: self.app.extensions[EXTENSION])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __exit__(self, *exc: object) -> None:  # socketserver's __enter__ returns the server
        self.stop()


def build_server(realm_file: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 issuer_base: str | None = None,
                 signing_key_pem: bytes | None = None) -> RunningServer:
    """Bind a threaded werkzeug server on a loopback address (port 0: any free port)."""
    host = check_loopback(host)
    server = RunningServer(host, port, None, _QuietRequestHandler)
    server.base_url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
    try:
        server.app = create_app(realm_file, issuer_base=issuer_base or server.base_url,
                                signing_key_pem=signing_key_pem)
    except BaseException:
        server.server_close()
        raise
    return server


def start_in_thread(realm_file: str | Path, **kwargs: Any) -> RunningServer:
    """Start the provider in a daemon thread; call `.stop()` (or use `with`) to end it."""
    running = build_server(realm_file, **kwargs)
    running.thread = threading.Thread(target=running.serve_forever, name="buendnis-idp",
                                      daemon=True)
    running.thread.start()
    return running
