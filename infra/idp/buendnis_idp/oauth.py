"""The OAuth 2.0 side: Authlib's authorization server with the realm's keys, sessions and tokens.

Authlib does the protocol (grants, client authentication, PKCE, introspection); ours is what
Keycloak adds: its per-client rules and error texts, sessions (in memory), and the tokens Keycloak
26 issues, signed with joserfc.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core.util import create_half_hash
from flask import current_app
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, RSAKey

from .realm import ACCESS, ID, ClaimContext, Client, Realm, Rep, apply_mappers

log = logging.getLogger(__name__)
# Authlib logs tokens, usernames and clients at DEBUG: none of them may reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)

EXTENSION = "buendnis_idp"
ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE = "Bearer", "ID", "Refresh"
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
# Authlib's PKCE texts, as Keycloak words them.
_PKCE_TEXTS = {"Missing 'code_verifier'": "PKCE code verifier not specified",
               "Missing 'code_challenge'": "Missing parameter: code_challenge",
               "Invalid 'code_verifier'": "PKCE invalid code verifier",
               "Invalid 'code_challenge'": "Invalid parameter: code_challenge",
               "Unsupported 'code_challenge_method'": "Invalid parameter: code_challenge_method"}


class KeycloakError(OAuth2Error):
    """An error answered with Keycloak's status, code and text."""

    def __init__(self, status: int, error: str, description: str | None = None):
        super().__init__(description, status_code=status, error=error)


class InvalidToken(Exception):
    """A token failed verification; the message is safe to return to the client."""


@dataclass
class Session:
    """A user session with Keycloak's client sessions in it: client id -> requested scope."""

    id: str
    user_id: str
    started: int
    last_refresh: int
    notes: dict[str, Any]
    clients: dict[str, str] = field(default_factory=dict)


class _Request(FlaskOAuth2Request):
    """Authlib refuses plain http except on loopback; behind the CI relay the Host header is a
    service name, and this development provider never speaks https."""

    def __init__(self, request: Any) -> None:
        OAuth2Request.__init__(self, request.method, "https://idp.invalid", headers=request.headers)
        self.uri, self._request, self.payload = request.url, request, FlaskOAuth2Payload(request)


class IdentityProvider(AuthorizationServer):
    """One realm's provider: Authlib's server, the signing key, the sessions and the browser's
    pending logins, codes and logout confirmations (in memory); `app.extensions["buendnis_idp"]`.
    Tests replace `clock` to travel in time."""

    def __init__(self, realm: Realm, signing_key_pem: bytes | None, issuer_base: str) -> None:
        super().__init__()
        key = RSAKey.import_key(signing_key_pem) if signing_key_pem else RSAKey.generate_key(2048)
        if not key.is_private or key.private_key.key_size < 2048:
            raise ValueError("the signing key must be an RSA private key of at least 2048 bits")
        self.realm, self.signing_key, self.issuer_base = realm, key, issuer_base
        self.issuer = f"{issuer_base}/realms/{realm.name}"
        self.clock: Callable[[], float] = time.time
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.transactions: dict[str, tuple[int, Any]] = {}  # store: key -> (expires, item)
        self.codes: dict[str, tuple[int, Any]] = {}
        self.confirmations: dict[str, tuple[int, Any]] = {}
        # Keycloak signs refresh tokens with the realm's HMAC key; clients never verify them.
        self.refresh_key = OctKey.import_key(secrets.token_bytes(64))
        self.cookie_key = OctKey.import_key(secrets.token_bytes(64))
        for grant in (PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant):
            self.register_grant(grant)
        self.register_grant(AuthorizationCodeGrant, [KeycloakPKCE()])
        self.register_endpoint(Introspection)

    # The signing key as Keycloak publishes it: JWKS entry, realm `public_key`, `kid`.
    private_key = property(lambda self: self.signing_key.private_key)  # cryptography's key
    kid = property(lambda self: self.signing_key.thumbprint())  # RFC 7638: same across restarts
    jwk = property(lambda self: {"kid": self.kid, "alg": "RS256", "use": "sig",
                                 **self.signing_key.as_dict(private=False)})
    public_key_b64 = property(lambda self: base64.b64encode(
        self.signing_key.as_der(private=False)).decode("ascii"))

    def __getitem__(self, name: str) -> Any:  # item access works too
        return getattr(self, name)

    def now(self) -> int:
        return int(self.clock())

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"

    # --- Authlib's hooks ---

    def query_client(self, client_id: str) -> Client | None:
        client = self.realm.client(client_id)
        return client if client is not None and client.flag("enabled", True) else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs; their sessions are kept in `sessions`."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(flask_request)

    def get_token_grant(self, request: OAuth2Request) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError:
            raise KeycloakError(400, "unsupported_grant_type", "Unsupported grant_type") from None

    def authenticate_client(self, request: OAuth2Request | None = None,
                            methods: list[str] = AUTH_METHODS, endpoint: str = "token") -> Client:
        try:
            return super().authenticate_client(self.create_oauth2_request(request), methods,
                                               endpoint)
        except InvalidClientError:
            log.info("client authentication failed")  # no client id: it may be a secret typed
            raise KeycloakError(401, "invalid_client",
                                "Invalid client or Invalid client credentials") from None

    # --- the browser's pending items and the sessions ---

    def put(self, store: dict[str, tuple[int, Any]], key: str, item: Any, lifespan: int) -> None:
        now = self.now()
        with self.lock:
            for old in [k for k, (expires, _) in store.items() if expires <= now]:
                del store[old]
            store[key] = (now + lifespan, item)

    def get(self, store: dict[str, tuple[int, Any]], key: str | None, pop: bool = False) -> Any:
        with self.lock:
            expires, item = (store.pop if pop else store.get)(key or "", (0, None))
        return item if expires > self.now() else None

    def start_session(self, user: Rep) -> Session:
        now = self.now()
        session = Session(str(uuid.uuid4()), user["id"], now, now, {"AUTH_TIME": now})
        with self.lock:
            self.sessions[session.id] = session
        return session

    def expires_at(self, session: Session) -> int:
        return min(session.last_refresh + self.realm.setting("ssoSessionIdleTimeout", 1800),
                   session.started + self.realm.setting("ssoSessionMaxLifespan", 36000))

    def active_session(self, session_id: str | None) -> Session | None:
        with self.lock:
            session = self.sessions.get(session_id or "")
            if session is not None and self.now() >= self.expires_at(session):
                del self.sessions[session.id]
                return None
            return session

    def end_session(self, session_id: str | None) -> Session | None:
        with self.lock:
            return self.sessions.pop(session_id or "", None)

    def token_user(self, claims: dict[str, Any]) -> Rep | None:
        """The enabled user a token names (a realm user, or its client's service account), while
        the token's session, if it has one, still holds the token's client."""
        client = self.realm.client(claims.get("azp"))
        user = self.realm.user_by_id(claims.get("sub")) or (
            client and self.realm.service_account_user(client))
        if claims.get("sid") or claims.get("typ") == REFRESH_TOKEN_TYPE:
            session = self.active_session(claims.get("sid"))
            user = user if session is not None and claims.get("azp") in session.clients else None
        return user if user and user["id"] == claims.get("sub") and user["enabled"] else None

    # --- tokens ---

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self.kid}, claims, self.signing_key)

    def issue(self, user: Rep, client: Client, requested: str, session: Session | None,
              notes: dict[str, Any] | None = None,
              id_claims: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Keycloak token response for the `requested` scope: access token, ID token (openid),
        refresh token (with a session, which then holds the client). `notes` add to the
        session's notes for this response (the acr of a browser login), `id_claims` (the nonce)
        go into the ID token only."""
        now, (scopes, openid) = self.now(), self.realm.resolve_scopes(client, requested)
        exp = now + self.realm.setting("accessTokenLifespan", 300)
        if session is not None:
            session.clients[client.client_id], session.last_refresh = requested, now
            exp = min(exp, session.started + self.realm.setting("ssoSessionMaxLifespan", 36000))
        sid = {"sid": session.id} if session else {}
        scope = " ".join((["openid"] if openid else []) + sorted(s["name"] for s in scopes if (
            s.get("attributes") or {}).get("include.in.token.scope", "true") == "true"))
        ctx = ClaimContext(self.realm, client, user, scopes,
                           {**(session.notes if session else {}), **(notes or {})})

        def claims(token_type: str, expires: int, **extra: Any) -> dict[str, Any]:
            return {"exp": expires, "iat": now, "jti": str(uuid.uuid4()), "iss": self.issuer,
                    "typ": token_type, "azp": client.client_id, **extra}

        def audience(token: dict[str, Any]) -> dict[str, Any]:
            if ctx.audiences:
                token["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else ctx.audiences
            return token

        access = audience(apply_mappers(ACCESS, claims(ACCESS_TOKEN_TYPE, exp, **sid,
                                                       scope=scope), ctx))
        response: dict[str, Any] = {"access_token": self.sign(access), "expires_in": exp - now,
                                    "refresh_expires_in": 0, "token_type": ACCESS_TOKEN_TYPE}
        if openid:
            at_hash = create_half_hash(response["access_token"], "RS256").decode("ascii")
            ctx.audiences = [client.client_id]
            response["id_token"] = self.sign(audience(apply_mappers(ID, claims(
                ID_TOKEN_TYPE, exp, sub=user["id"], **(id_claims or {}), **sid, at_hash=at_hash),
                ctx)))
        if session is not None:
            refresh_exp = self.expires_at(session)
            refresh = claims(REFRESH_TOKEN_TYPE, refresh_exp, aud=self.issuer, sub=user["id"],
                             **sid, scope=scope)
            response["refresh_token"] = jwt.encode({"alg": "HS512", "typ": "JWT"}, refresh,
                                                   self.refresh_key, algorithms=["HS512"])
            response["refresh_expires_in"] = refresh_exp - now
        return {**response, "not-before-policy": 0,
                **({"session_state": session.id} if session else {}), "scope": scope}

    def verify(self, token: str, token_type: str, expiry: bool = True) -> dict[str, Any]:
        """A token's claims; InvalidToken unless this realm issued it as `token_type` and, with
        `expiry`, it has not expired (Keycloak takes an expired ID token as a logout hint). Only
        this provider holds the keys: a valid signature means the claims are its own."""
        refresh = token_type == REFRESH_TOKEN_TYPE
        message = "Invalid refresh token" if refresh else "Token verification failed"
        try:
            claims = jwt.decode(token, self.refresh_key if refresh else self.signing_key,
                                algorithms=["HS512" if refresh else "RS256"]).claims
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(message) from exc
        # The issuer differs when a kept signing key serves another address.
        if claims.get("iss") != self.issuer or claims.get("typ") != token_type:
            raise InvalidToken(message)
        if expiry and claims["exp"] <= self.now():
            raise InvalidToken("Token is not active")
        return claims

    def to_client(self, client: Client, uri: str, params: list[tuple[str, str]],
                  fragment: bool = False, code: str | None = None) -> tuple:
        """A redirect to the client: `params`, then Keycloak's `iss`, then the code."""
        params = [*params, ("iss", self.issuer), *([("code", code)] if code else [])]
        location = add_params_to_uri(uri, params, fragment)
        return 302, "", [("Location", location), ("Cache-Control", "no-store")]


def current() -> IdentityProvider:
    return current_app.extensions[EXTENSION]


def service_account_notes(client: Client) -> dict[str, str]:
    """The session notes of a client-credentials login (Keycloak's service_account scope)."""
    address = flask_request.remote_addr or ""
    return {"client_id": client.client_id, "clientHost": address, "clientAddress": address}


class _KeycloakGrant:
    """What every grant adds to Authlib's: Keycloak's scopes, sessions and tokens."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    session: Session | None = None
    server: IdentityProvider

    def validate_requested_scope(self) -> None:
        self.server.realm.resolve_scopes(self.request.client, self.request.payload.scope)

    def authenticate_user(self, *_: Any) -> Rep:
        """The user of the session a refresh token or a code belongs to."""
        user = self.server.realm.user_by_id(self.session.user_id)
        if user is None or not user["enabled"]:
            raise InvalidGrantError("User disabled")
        return user

    def issue(self, user: Rep, scope: str | None, **kwargs: Any) -> dict[str, Any]:
        client = self.request.client  # type: ignore[attr-defined]
        log.info("%s grant for client %s: user %s", self.GRANT_TYPE, client.client_id, user["id"])
        return self.server.issue(user, client, scope or "", self.session, **kwargs)


class PasswordGrant(_KeycloakGrant, grants.ResourceOwnerPasswordCredentialsGrant):
    def authenticate_user(self, username: str, password: str) -> Rep:
        user, problem = self.server.realm.check_login(username, password)
        if problem == "invalid":
            log.info("password grant refused: invalid user credentials")
            raise KeycloakError(401, "invalid_grant", "Invalid user credentials")
        if problem is not None:
            raise InvalidGrantError("Account disabled" if problem == "disabled"
                               else "Account is not fully set up")
        return user

    def generate_token(self, user: Rep, scope: str | None = None, **_: Any) -> dict[str, Any]:
        self.session = self.server.start_session(user)
        return self.issue(user, scope)


class ClientCredentialsGrant(_KeycloakGrant, grants.ClientCredentialsGrant):
    def generate_token(self, scope: str | None = None, **_: Any) -> dict[str, Any]:
        client = self.request.client
        user = self.server.realm.service_account_user(client)
        if user is None or not user["enabled"]:
            raise InvalidGrantError("Account disabled")
        # No session, so no refresh token.
        return self.issue(user, scope, notes=service_account_notes(client))


class Stored(dict):
    """A verified refresh token, or a code of the browser login, as Authlib's grants ask."""

    code_challenge = property(lambda self: self["code_challenge"])  # for Authlib's PKCE
    code_challenge_method = property(lambda self: self["code_challenge_method"])

    def get_scope(self) -> str:
        return self["scope"]

    def get_redirect_uri(self) -> str | None:
        return self["redirect_uri"]

    def check_client(self, client: Client) -> bool:
        if self["azp"] != client.client_id:
            raise InvalidGrantError("Invalid refresh token. Token client and authorized client "
                                    "don't match")
        return True


class RefreshTokenGrant(_KeycloakGrant, grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Stored:
        try:
            claims = Stored(self.server.verify(refresh_token, REFRESH_TOKEN_TYPE))
        except InvalidToken as exc:
            raise InvalidGrantError(str(exc)) from None
        self.session = self.server.active_session(claims["sid"])
        if self.session is None:
            raise InvalidGrantError("Session not active")
        if claims["azp"] not in self.session.clients:
            raise InvalidGrantError("Session doesn't have required client")
        return claims

    def revoke_old_credential(self, refresh_token: Stored) -> None:
        """The realm does not revoke refresh tokens (`revokeRefreshToken`: false)."""

    def generate_token(self, user: Rep, **_: Any) -> dict[str, Any]:
        return self.issue(user, self.session.clients[self.request.client.client_id])


class AuthorizationCodeGrant(_KeycloakGrant, grants.AuthorizationCodeGrant):
    """The browser login's grant: /auth validates with it (browser.py), the token endpoint
    exchanges its codes."""

    def create_authorization_response(self, redirect_uri: str, login: Any) -> tuple:
        """Keycloak's answer to a login: state, session_state, iss and code, in that order."""
        self.session, acr = login
        data, client, idp = self.request.payload.data, self.request.client, self.server
        code = f"{uuid.uuid4()}.{self.session.id}.{client.id}"  # Keycloak's code format
        keys = ("scope", "redirect_uri", "nonce", "code_challenge", "code_challenge_method")
        # Used codes are kept a while longer, so that a replay is recognised.
        idp.put(idp.codes, code, Stored(
            {k: data.get(k) for k in keys}, acr=acr, session_id=self.session.id,
            client_id=client.client_id, created=idp.now(), fresh=True),
            11 * idp.realm.setting("accessCodeLifespan", 60))
        params = [("state", data["state"])] if data.get("state") is not None else []
        return idp.to_client(client, redirect_uri, [*params, ("session_state", self.session.id)],
                             data.get("response_mode") == "fragment", code)

    def query_authorization_code(self, code: str, client: Client) -> Stored:
        idp = self.server
        data = idp.get(idp.codes, code) or Stored()
        # A code is used up by its first exchange, even a failed one (dict.pop is atomic).
        first = data.pop("fresh", False)
        session = idp.active_session(data.get("session_id"))
        if not first and session and data["client_id"] in session.clients:
            # Keycloak: a code used twice detaches the client from the session, which revokes
            # the tokens issued for the first use.
            del session.clients[data["client_id"]]
            log.warning("code of client %s used twice: tokens revoked", data["client_id"])
        if first and data["created"] + idp.realm.setting("accessCodeLifespan", 60) <= idp.now():
            raise InvalidGrantError("Code is expired")
        if not first or session is None:
            raise InvalidGrantError("Code not valid")
        self.session = session
        if data["client_id"] != client.client_id:
            raise InvalidGrantError("Auth error")
        if data["redirect_uri"] != self.request.payload.redirect_uri:
            raise InvalidGrantError("Incorrect redirect_uri")
        return data

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
        method = grant.request.payload.data.get("code_challenge_method")
        enforced = grant.request.client.attributes.get("pkce.code.challenge.method")
        if enforced and method is None:
            raise InvalidRequestError("Missing parameter: code_challenge_method")
        if enforced and method != enforced:
            raise InvalidRequestError(
                "Invalid parameter: code challenge method is not configured one")
        try:
            super().validate_code_challenge(grant, redirect_uri)
        except OAuth2Error as exc:
            raise InvalidRequestError(_PKCE_TEXTS.get(exc.description, exc.description)) from None

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error as exc:
            text = _PKCE_TEXTS.get(exc.description, "PKCE verification failed")
            raise InvalidGrantError(text) from None


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
                return {**self.server.verify(token, token_type), "token_type": token_type}
            except InvalidToken:
                continue
        return None

    def check_permission(self, token: dict[str, Any], client: Client, request: Any) -> bool:
        return True

    def create_introspection_payload(self, token: dict[str, Any] | None) -> dict[str, Any]:
        user = self.server.token_user(token) if token else None
        if user is None:
            return {"active": False}
        return {**token, "client_id": token["azp"], "username": user["username"], "active": True}
