"""The OAuth 2.0 side on Authlib's authorization server: the grants and introspection.

Authlib does the protocol: it picks the grant for `grant_type`, authenticates the client (HTTP
Basic, form, or none for public clients), checks the code's redirect URI, scope and PKCE,
validates refresh tokens against their client and answers introspection. What is ours is what
Keycloak adds: its per-client grant rules and error texts, sessions, and the token contents.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, UnsupportedGrantTypeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import request as flask_request

from .claims import resolve_client_scopes
from .realm import Client, Rep
from .tokens import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, InvalidToken, Session

log = logging.getLogger(__name__)
# Authlib logs tokens, usernames and clients at DEBUG: none of them may reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
# Authlib's PKCE texts, as Keycloak words them.
_PKCE_TEXTS = {"Missing 'code_verifier'": "PKCE code verifier not specified",
               "Invalid 'code_verifier'": "PKCE invalid code verifier",
               "Invalid 'code_challenge'": "Invalid parameter: code_challenge",
               "Unsupported 'code_challenge_method'": "Invalid parameter: code_challenge_method"}


class KeycloakError(OAuth2Error):
    """An error answered with Keycloak's status, code and text."""

    def __init__(self, status: int, error: str, description: str | None = None,
                 headers: list[tuple[str, str]] | None = None):
        super().__init__(description, status_code=status, error=error)
        self.headers = headers or []

    def get_headers(self) -> list[tuple[str, str]]:
        return super().get_headers() + self.headers


def to_client(idp: Any, client: Client, uri: str, params: list[tuple[str, str]],
              fragment: bool = False, code: str | None = None) -> tuple:
    """A redirect to the client: `params`, then Keycloak's `iss`, then the code."""
    if client.attributes.get("exclude.issuer.from.auth.response") != "true":
        params = [*params, ("iss", idp.issuer)]
    location = add_params_to_uri(uri, params + ([("code", code)] if code else []), fragment)
    return 302, "", [("Location", location), ("Cache-Control", "no-store")]


def service_account_notes(client: Client) -> dict[str, str]:
    """The session notes of a client-credentials login (Keycloak's service_account scope)."""
    address = flask_request.remote_addr or ""
    return {"client_id": client.client_id, "clientHost": address, "clientAddress": address}


class _Request(FlaskOAuth2Request):
    """Authlib refuses plain http except on loopback; behind the CI relay the Host header is a
    service name, and this development provider never speaks https."""

    def __init__(self, request: Any) -> None:
        OAuth2Request.__init__(self, request.method, "https://idp.invalid", headers=request.headers)
        self.uri, self._request, self.payload = request.url, request, FlaskOAuth2Payload(request)


class Server(AuthorizationServer):
    def __init__(self, idp: Any) -> None:
        super().__init__()
        self.idp = idp
        for grant in (PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant):
            self.register_grant(grant)
        self.register_grant(AuthorizationCodeGrant, [KeycloakPKCE()])
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        client = self.idp.realm.client(client_id)
        return client if client is not None and client.flag("enabled", True) else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs; their sessions are kept by the TokenService."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(flask_request)

    def get_token_grant(self, request: OAuth2Request) -> Any:
        if not request.payload.grant_type:
            raise KeycloakError(400, "invalid_request", "Missing form parameter: grant_type")
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError:
            raise KeycloakError(400, "unsupported_grant_type", "Unsupported grant_type") from None

    def authenticate_client(self, request: OAuth2Request, methods: list[str],
                            endpoint: str = "token") -> Client:
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            log.info("client authentication failed")  # no client id: it may be a secret typed
            raise KeycloakError(401, "invalid_client",
                                "Invalid client or Invalid client credentials") from None


class _KeycloakGrant:
    """What every grant adds to Authlib's: Keycloak's scopes, sessions and tokens."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    session: Session | None = None
    idp = property(lambda self: self.server.idp)

    def validate_requested_scope(self) -> None:
        self.scopes(self.request.payload.scope)  # type: ignore[attr-defined]

    def scopes(self, scope: str | None) -> tuple[list[Rep], bool]:
        return resolve_client_scopes(self.idp.realm, self.request.client, scope)

    def session_user(self) -> Rep:
        assert self.session is not None
        user = self.idp.realm.user_by_id(self.session.user_id)
        if user is None or not user["enabled"]:
            raise KeycloakError(400, "invalid_grant", "User disabled")
        return user

    def issue(self, user: Rep, scope: str | None, **kwargs: Any) -> dict[str, Any]:
        client = self.request.client  # type: ignore[attr-defined]
        scopes, openid = self.scopes(scope)
        if self.session is not None:
            self.idp.attach(self.session, client, scopes, openid, scope or "")
        log.info("%s grant for client %s: user %s", self.GRANT_TYPE, client.client_id, user["id"])
        return self.idp.issue(user, client, scopes, openid, scope or "", self.session, **kwargs)


class PasswordGrant(_KeycloakGrant, grants.ResourceOwnerPasswordCredentialsGrant):
    def authenticate_user(self, username: str, password: str) -> Rep:
        user, problem = self.idp.realm.check_login(username, password)
        if problem == "invalid":
            log.info("password grant refused: invalid user credentials")
            raise KeycloakError(401, "invalid_grant", "Invalid user credentials")
        if problem is not None:
            raise KeycloakError(400, "invalid_grant", "Account disabled" if problem == "disabled"
                                else "Account is not fully set up")
        return user

    def generate_token(self, user: Rep, scope: str | None = None, **_: Any) -> dict[str, Any]:
        self.session = self.idp.start_session(user)
        return self.issue(user, scope)


class ClientCredentialsGrant(_KeycloakGrant, grants.ClientCredentialsGrant):
    def generate_token(self, scope: str | None = None, **_: Any) -> dict[str, Any]:
        client = self.request.client
        user = self.idp.realm.service_account_user(client)
        if user is None or not user["enabled"]:
            raise KeycloakError(400, "invalid_grant", "Account disabled")
        # No session, so no refresh token.
        return self.issue(user, scope, notes=service_account_notes(client))


class Stored(dict):
    """A verified refresh token, or a code of the browser login, as Authlib's grants ask."""

    def get_scope(self) -> str:
        return self["scope"]

    def get_redirect_uri(self) -> str | None:
        return self["redirect_uri"]

    code_challenge = property(lambda self: self["code_challenge"])  # for Authlib's PKCE
    code_challenge_method = property(lambda self: self["code_challenge_method"])

    def check_client(self, client: Client) -> bool:
        if self["azp"] != client.client_id:
            raise KeycloakError(400, "invalid_grant", "Invalid refresh token. Token client and "
                                "authorized client don't match")
        return True


class RefreshTokenGrant(_KeycloakGrant, grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Stored:
        try:
            claims = Stored(self.idp.verify(refresh_token, REFRESH_TOKEN_TYPE))
        except InvalidToken as exc:
            raise KeycloakError(400, "invalid_grant", str(exc)) from None
        self.session = self.idp.active_session(claims["sid"])
        if self.session is None:
            raise KeycloakError(400, "invalid_grant", "Session not active")
        if claims["azp"] not in self.session.clients:
            raise KeycloakError(400, "invalid_grant", "Session doesn't have required client")
        if self.idp.realm.rep.get("revokeRefreshToken") and \
                claims["jti"] in self.session.used_refresh_tokens:
            raise KeycloakError(400, "invalid_grant",
                                "Maximum allowed refresh token reuse exceeded")
        return claims

    def authenticate_user(self, refresh_token: Stored) -> Rep:
        return self.session_user()

    def revoke_old_credential(self, refresh_token: Stored) -> None:
        if self.idp.realm.rep.get("revokeRefreshToken"):
            self.session.used_refresh_tokens.add(refresh_token["jti"])

    def generate_token(self, user: Rep, **_: Any) -> dict[str, Any]:
        client_id = self.request.client.client_id
        return self.issue(user, self.idp.client_state(self.session, client_id)[2])


class AuthorizationCodeGrant(_KeycloakGrant, grants.AuthorizationCodeGrant):
    """The browser login's grant: /auth validates with it (browser.py), the token endpoint
    exchanges its codes."""

    def create_authorization_response(self, redirect_uri: str, login: Any) -> tuple:
        """Keycloak's answer to a login: state, session_state, iss and code, in that order."""
        self.session, acr = login
        data, client, idp = self.request.payload.data, self.request.client, self.idp
        scope = data.get("scope") or ""
        idp.attach(self.session, client, *self.scopes(scope), scope)
        code = f"{uuid.uuid4()}.{self.session.id}.{client.id}"  # Keycloak's code format
        keys = ("redirect_uri", "nonce", "code_challenge", "code_challenge_method")
        idp.put(idp.codes, code, Stored(
            {k: data.get(k) for k in keys}, scope=scope, acr=acr, session_id=self.session.id,
            client_id=client.client_id, created=idp.now(), used=False))
        params = [("state", data["state"])] if data.get("state") is not None else []
        return to_client(idp, client, redirect_uri, [*params, ("session_state", self.session.id)],
                         data.get("response_mode") == "fragment", code)

    def query_authorization_code(self, code: str, client: Client) -> Stored:
        idp = self.idp
        with idp.lock:  # a code is used up by its first exchange, even a failed one
            data = idp.codes.get(code)
            first = data is not None and not data["used"]
            if data is not None:
                data["used"] = True
        session = idp.active_session(data["session_id"]) if data else None
        if data and not first and session and session.clients.pop(data["client_id"], None):
            # Keycloak: a code used twice detaches the client from the session, which revokes
            # the tokens issued for the first use.
            log.warning("code of client %s used twice: tokens revoked", data["client_id"])
        if first and data["created"] + idp.realm.setting("accessCodeLifespan", 60) <= idp.now():
            raise KeycloakError(400, "invalid_grant", "Code is expired")
        self.session = session if first else None
        if self.session is None:
            raise KeycloakError(400, "invalid_grant", "Code not valid")
        if data["client_id"] != client.client_id:
            raise KeycloakError(400, "invalid_grant", "Auth error")
        if data["redirect_uri"] != self.request.payload.redirect_uri:
            raise KeycloakError(400, "invalid_grant", "Incorrect redirect_uri")
        return data

    def authenticate_user(self, code: Stored) -> Rep:
        return self.session_user()

    def delete_authorization_code(self, code: Stored) -> None:
        """Redeeming it used it up already."""

    def generate_token(self, user: Rep, scope: str | None = None, **_: Any) -> dict[str, Any]:
        code = self.request.authorization_code
        nonce = {"nonce": code["nonce"]} if code["nonce"] is not None else None
        return self.issue(user, scope, notes={"ACR_LEVEL": code["acr"]}, id_claims=nonce)


class KeycloakPKCE(CodeChallenge):
    """Authlib's PKCE, with Keycloak's rules at /auth (the client's `pkce.code.challenge.method`
    is enforced) and Keycloak's texts at both ends."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        enforced = grant.request.client.attributes.get("pkce.code.challenge.method")
        if enforced and method is None:
            raise KeycloakError(400, "invalid_request", "Missing parameter: code_challenge_method")
        if enforced and method != enforced:
            raise KeycloakError(400, "invalid_request",
                                "Invalid parameter: code challenge method is not configured one")
        if (enforced or method) and challenge is None:
            raise KeycloakError(400, "invalid_request", "Missing parameter: code_challenge")
        try:
            super().validate_code_challenge(grant, redirect_uri)
        except OAuth2Error as exc:
            raise KeycloakError(400, "invalid_request", _PKCE_TEXTS.get(exc.description,
                                                                        exc.description)) from None

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error as exc:
            raise KeycloakError(400, "invalid_grant", _PKCE_TEXTS.get(
                exc.description, "PKCE verification failed")) from None


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_endpoint_client(self, request: OAuth2Request) -> Client:
        client = super().authenticate_endpoint_client(request)
        if client.public:
            raise KeycloakError(403, "invalid_request", "Client not allowed.")
        return client

    def query_token(self, token: str, token_type_hint: str | None) -> dict[str, Any] | None:
        for token_type in (ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE):
            try:
                return {**self.server.idp.verify(token, token_type), "token_type": token_type}
            except InvalidToken:
                continue
        return None

    def check_permission(self, token: dict[str, Any], client: Client, request: Any) -> bool:
        return True

    def create_introspection_payload(self, token: dict[str, Any] | None) -> dict[str, Any]:
        user = self.server.idp.token_user(token) if token else None
        if user is None or not self.server.idp.session_holds(token):
            return {"active": False}
        return {**token, "client_id": token["azp"], "username": user["username"], "active": True}
