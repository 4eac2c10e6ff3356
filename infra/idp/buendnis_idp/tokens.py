"""The realm's signing key, its sessions and the tokens Keycloak 26 issues (access, ID, refresh).

The JOSE work (keys, JWKS, signing, verifying) is joserfc, the JOSE library Authlib is built on;
this module only decides what goes into a token, which is Keycloak's shape for the realm file.
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
from .realm import Client, ClientScope, Realm, User

Clock = Callable[[], float]
ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE = "Bearer", "ID", "Refresh"


class InvalidToken(Exception):
    """A token failed verification; the message is safe to return to the client."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """The realm's RSA key as Keycloak publishes it: JWKS entry, realm `public_key`, `kid`."""

    key: RSAKey

    @classmethod
    def load(cls, pem: bytes | None) -> SigningKey:
        key = RSAKey.import_key(pem) if pem else RSAKey.generate_key(2048)
        if not key.is_private or key.private_key.key_size < 2048:
            raise ValueError("the signing key must be an RSA private key of at least 2048 bits")
        return cls(key)

    @property
    def private_key(self) -> Any:  # cryptography's RSAPrivateKey
        return self.key.private_key

    @property
    def kid(self) -> str:
        return self.key.thumbprint()  # RFC 7638: stable for the key across restarts

    @property
    def jwk(self) -> dict[str, Any]:
        return {"kid": self.kid, "alg": "RS256", "use": "sig", **self.key.as_dict(private=False)}

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.key.as_der(private=False)).decode("ascii")


@dataclass
class Session:
    """A user session and Keycloak's client sessions in it: client id -> (scope names, openid,
    requested scope string)."""

    id: str
    user_id: str
    started: int
    last_refresh: int
    notes: dict[str, Any]
    clients: dict[str, tuple[tuple[str, ...], bool, str]] = field(default_factory=dict)
    sso: bool = False  # a browser session, which the identity cookie may resume
    used_refresh_tokens: set[str] = field(default_factory=set)


class TokenService:
    """Issues and verifies the realm's tokens and keeps its sessions (in memory)."""

    def __init__(self, realm: Realm, key: SigningKey, issuer: str) -> None:
        self.realm, self.key, self.issuer = realm, key, issuer
        self.clock: Clock = time.time
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        # Keycloak signs refresh tokens with the realm's HMAC key; clients never verify them.
        self.refresh_key = OctKey.import_key(secrets.token_bytes(64))

    def now(self) -> int:
        return int(self.clock())

    # --- sessions -------------------------------------------------------------------------

    def start_session(self, user: User, notes: dict[str, Any] | None = None) -> Session:
        now = self.now()
        session = Session(str(uuid.uuid4()), user.id, now, now, {"AUTH_TIME": now, **(notes or {})})
        with self.lock:
            self.sessions[session.id] = session
        return session

    def attach(self, session: Session, client: Client, scopes: list[ClientScope], openid: bool,
               requested: str) -> None:
        session.clients[client.client_id] = (tuple(s.name for s in scopes), openid, requested)
        session.last_refresh = self.now()

    def expires_at(self, session: Session) -> int:
        return min(session.last_refresh + self.realm.sso_session_idle_timeout,
                   session.started + self.realm.sso_session_max_lifespan)

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

    def client_state(self, session: Session, client_id: str) -> tuple[list[ClientScope], bool, str]:
        """The scopes, openid flag and requested scope string the client holds in the session."""
        names, openid, requested = session.clients[client_id]
        return [self.realm.client_scopes[n] for n in names], openid, requested

    # --- issuing --------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self.key.kid}, claims, self.key.key)

    def _base(self, token_type: str, client: Client, exp: int, now: int) -> dict[str, Any]:
        return {"exp": exp, "iat": now, "jti": str(uuid.uuid4()), "iss": self.issuer,
                "typ": token_type, "azp": client.client_id}

    def issue(self, user: User, client: Client, scopes: list[ClientScope], openid: bool,
              requested: str, session: Session | None, notes: dict[str, Any] | None = None,
              id_claims: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Keycloak token response: access token, ID token (openid), refresh token (sessions).
        `notes` add to the session's notes for this response (the acr of a browser login),
        `id_claims` (the nonce) go into the ID token only."""
        now = self.now()
        lifespan = client.attributes.get("access.token.lifespan", "")
        exp = now + (int(lifespan) if lifespan.isdigit() and int(lifespan) > 0
                     else self.realm.access_token_lifespan)
        if session is not None:
            exp = min(exp, session.started + self.realm.sso_session_max_lifespan)
        notes = {**(session.notes if session else {}), **(notes or {})}
        scope = token_scope_string(scopes, openid)
        ctx = ClaimContext(self.realm, client, user, scopes, requested, notes)
        access = self._base(ACCESS_TOKEN_TYPE, client, exp, now)
        access.update({"sid": session.id} if session else {})
        access["scope"] = scope
        apply_mappers(ACCESS, access, ctx)
        if ctx.audiences:
            access["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else ctx.audiences
        access_token = self.sign(access)
        response: dict[str, Any] = {"access_token": access_token, "expires_in": exp - now,
                                    "refresh_expires_in": 0, "token_type": ACCESS_TOKEN_TYPE}
        if openid:
            id_token = {**self._base(ID_TOKEN_TYPE, client, exp, now), "sub": user.id,
                        **(id_claims or {}), **({"sid": session.id} if session else {})}
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            id_token["at_hash"] = _b64url(digest[: len(digest) // 2])
            ctx.audiences = [client.client_id]
            apply_mappers(ID, id_token, ctx)
            id_token["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else ctx.audiences
            response["id_token"] = self.sign(id_token)
        if session is not None:
            refresh_exp = self.expires_at(session)
            refresh = {**self._base(REFRESH_TOKEN_TYPE, client, refresh_exp, now),
                       "aud": self.issuer, "sub": user.id, "sid": session.id, "scope": scope}
            response["refresh_token"] = jwt.encode({"alg": "HS512", "typ": "JWT"}, refresh,
                                                   self.refresh_key, algorithms=["HS512"])
            response["refresh_expires_in"] = refresh_exp - now
        response["not-before-policy"] = 0
        response.update({"session_state": session.id} if session else {})
        response["scope"] = scope
        return response

    # --- verifying ------------------------------------------------------------------------

    def _decode(self, token: str, key: Any, alg: str, token_type: str, expiry: bool = True,
                message: str = "Token verification failed") -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(message) from exc
        claims = decoded.claims
        if (alg == "RS256" and decoded.header.get("kid") != self.key.kid) or \
                claims.get("iss") != self.issuer or claims.get("typ") != token_type or \
                not isinstance(claims.get("exp"), int):
            raise InvalidToken(message)
        if expiry and claims["exp"] <= self.now():
            raise InvalidToken("Token is not active")
        return claims

    def verify_access_token(self, token: str) -> dict[str, Any]:
        return self._decode(token, self.key.key, "RS256", ACCESS_TOKEN_TYPE)

    def verify_id_token_hint(self, token: str) -> dict[str, Any]:
        """Like Keycloak, an expired ID token is still a valid hint for logout."""
        return self._decode(token, self.key.key, "RS256", ID_TOKEN_TYPE, expiry=False)

    def verify_refresh_token(self, token: str) -> dict[str, Any]:
        claims = self._decode(token, self.refresh_key, "HS512", REFRESH_TOKEN_TYPE,
                              message="Invalid refresh token")
        if claims.get("aud") != self.issuer or not claims.get("sid") or not claims.get("azp"):
            raise InvalidToken("Invalid refresh token")
        return claims
