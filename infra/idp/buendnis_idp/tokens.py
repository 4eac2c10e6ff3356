"""The realm's signing key, its sessions and the tokens Keycloak 26 issues (access, ID, refresh).

The JOSE work (keys, JWKS, signing, verifying) is joserfc, the JOSE library Authlib is built on;
this module decides what goes into a token, which is Keycloak's shape for the realm file.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, RSAKey

from .claims import ACCESS, ID, ClaimContext, apply_mappers, token_scope_string
from .realm import Client, Realm, Rep

Clock = Callable[[], float]
ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE = "Bearer", "ID", "Refresh"


class InvalidToken(Exception):
    """A token failed verification; the message is safe to return to the client."""


@dataclass
class Session:
    """A user session with Keycloak's client sessions in it: client id -> (scope names, openid,
    requested scope string)."""

    id: str
    user_id: str
    started: int
    last_refresh: int
    notes: dict[str, Any]
    clients: dict[str, tuple[list[str], bool, str]] = field(default_factory=dict)
    sso: bool = False  # a browser session, which the identity cookie may resume
    used_refresh_tokens: set[str] = field(default_factory=set)


class TokenService:
    """Issues and verifies the realm's tokens and keeps its sessions (in memory)."""

    def __init__(self, realm: Realm, signing_key_pem: bytes | None, issuer: str) -> None:
        key = RSAKey.import_key(signing_key_pem) if signing_key_pem else RSAKey.generate_key(2048)
        if not key.is_private or key.private_key.key_size < 2048:
            raise ValueError("the signing key must be an RSA private key of at least 2048 bits")
        self.realm, self.signing_key, self.issuer = realm, key, issuer
        self.clock: Clock = time.time
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        # Keycloak signs refresh tokens with the realm's HMAC key; clients never verify them.
        self.refresh_key = OctKey.import_key(secrets.token_bytes(64))

    # The signing key as Keycloak publishes it: JWKS entry, realm `public_key`, `kid`.
    private_key = property(lambda self: self.signing_key.private_key)  # cryptography's key
    kid = property(lambda self: self.signing_key.thumbprint())  # RFC 7638: same across restarts
    jwk = property(lambda self: {"kid": self.kid, "alg": "RS256", "use": "sig",
                                 **self.signing_key.as_dict(private=False)})
    public_key_b64 = property(lambda self: base64.b64encode(
        self.signing_key.as_der(private=False)).decode("ascii"))

    def now(self) -> int:
        return int(self.clock())

    def start_session(self, user: Rep, sso: bool = False) -> Session:
        now = self.now()
        session = Session(str(uuid.uuid4()), user["id"], now, now, {"AUTH_TIME": now}, sso=sso)
        with self.lock:
            self.sessions[session.id] = session
        return session

    def attach(self, session: Session, client: Client, scopes: list[Rep], openid: bool,
               requested: str) -> None:
        session.clients[client.client_id] = ([s["name"] for s in scopes], openid, requested)
        session.last_refresh = self.now()

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

    def client_state(self, session: Session, client_id: str) -> tuple[list[Rep], bool, str]:
        """The scopes, openid flag and requested scope string the client holds in the session."""
        names, openid, requested = session.clients[client_id]
        return [self.realm.client_scopes[n] for n in names], openid, requested

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self.kid}, claims, self.signing_key)

    def issue(self, user: Rep, client: Client, scopes: list[Rep], openid: bool, requested: str,
              session: Session | None, notes: dict[str, Any] | None = None,
              id_claims: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Keycloak token response: access token, ID token (openid), refresh token (sessions).
        `notes` add to the session's notes for this response (the acr of a browser login),
        `id_claims` (the nonce) go into the ID token only."""
        now = self.now()
        lifespan = client.attributes.get("access.token.lifespan", "")
        exp = now + (int(lifespan) if lifespan.isdigit() and int(lifespan) > 0
                     else self.realm.setting("accessTokenLifespan", 300))
        if session is not None:
            exp = min(exp, session.started + self.realm.setting("ssoSessionMaxLifespan", 36000))
        sid = {"sid": session.id} if session else {}
        scope = token_scope_string(scopes, openid)
        ctx = ClaimContext(self.realm, client, user, scopes, requested,
                           {**(session.notes if session else {}), **(notes or {})})

        def claims(token_type: str, expires: int, **extra: Any) -> dict[str, Any]:
            return {"exp": expires, "iat": now, "jti": str(uuid.uuid4()), "iss": self.issuer,
                    "typ": token_type, "azp": client.client_id, **extra}

        access = apply_mappers(ACCESS, claims(ACCESS_TOKEN_TYPE, exp, **sid, scope=scope), ctx)
        if ctx.audiences:
            access["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else ctx.audiences
        response: dict[str, Any] = {"access_token": self.sign(access), "expires_in": exp - now,
                                    "refresh_expires_in": 0, "token_type": ACCESS_TOKEN_TYPE}
        if openid:
            digest = hashlib.sha256(response["access_token"].encode("ascii")).digest()
            at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")
            ctx.audiences = [client.client_id]
            id_token = apply_mappers(ID, claims(ID_TOKEN_TYPE, exp, sub=user["id"],
                                                **(id_claims or {}), **sid, at_hash=at_hash), ctx)
            id_token["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else ctx.audiences
            response["id_token"] = self.sign(id_token)
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
        `expiry`, it has not expired (Keycloak takes an expired ID token as a logout hint)."""
        refresh = token_type == REFRESH_TOKEN_TYPE
        message = "Invalid refresh token" if refresh else "Token verification failed"
        try:
            decoded = jwt.decode(token, self.refresh_key if refresh else self.signing_key,
                                 algorithms=["HS512" if refresh else "RS256"])
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(message) from exc
        claims = decoded.claims
        if (not refresh and decoded.header.get("kid") != self.kid) or \
                claims.get("iss") != self.issuer or claims.get("typ") != token_type or \
                not isinstance(claims.get("exp"), int) or (refresh and (
                    claims.get("aud") != self.issuer or not claims.get("sid")
                    or not claims.get("azp"))):
            raise InvalidToken(message)
        if expiry and claims["exp"] <= self.now():
            raise InvalidToken("Token is not active")
        return claims
