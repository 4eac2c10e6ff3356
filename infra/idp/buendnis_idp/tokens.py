"""Signing keys, sessions and the tokens Keycloak 26 issues: access, ID and refresh tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .claims import ACCESS, ID, ClaimContext, apply_mappers, token_scope_string
from .realm import Client, ClientScope, Realm, User

Clock = Callable[[], float]

ACCESS_TOKEN_TYPE = "Bearer"
ID_TOKEN_TYPE = "ID"
REFRESH_TOKEN_TYPE = "Refresh"
# Keycloak signs refresh tokens with the realm's HMAC key; clients never verify them.
REFRESH_ALGORITHM = "HS512"


_NO_TIME_CHECKS = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


class InvalidToken(Exception):
    """A token failed verification; the message is safe to return to the client."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
    if key.key_size < 2048:
        raise ValueError("the signing key must have at least 2048 bits")
    return key


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class SigningKey:
    """The realm's RSA key as Keycloak publishes it: JWKS entry, realm `public_key`, `kid`."""

    private_key: rsa.RSAPrivateKey
    kid: str
    jwk: dict[str, Any]
    public_key_b64: str

    @classmethod
    def create(cls, private_key: rsa.RSAPrivateKey, realm_name: str) -> SigningKey:
        public = private_key.public_key()
        numbers = public.public_numbers()
        n, e = _b64url(_int_bytes(numbers.n)), _b64url(_int_bytes(numbers.e))
        # RFC 7638 thumbprint: stable for the key, so tokens keep their kid across restarts.
        thumbprint = json.dumps(
            {"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True
        )
        kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
        cert_der = _self_signed_certificate(private_key, realm_name).public_bytes(
            serialization.Encoding.DER
        )
        jwk = {
            "kid": kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": n,
            "e": e,
            "x5c": [base64.b64encode(cert_der).decode("ascii")],
            "x5t": _b64url(hashlib.sha1(cert_der).digest()),  # noqa: S324 - the X.509 thumbprint is defined as SHA-1
            "x5t#S256": _b64url(hashlib.sha256(cert_der).digest()),
        }
        spki = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(
            private_key=private_key,
            kid=kid,
            jwk=jwk,
            public_key_b64=base64.b64encode(spki).decode("ascii"),
        )


def _self_signed_certificate(key: rsa.RSAPrivateKey, realm_name: str) -> x509.Certificate:
    # Keycloak publishes a self-signed certificate with CN=<realm> for its generated RSA key.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, realm_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


@dataclass
class Session:
    """A user session: created by a password login, ended by logout or by running out of time."""

    id: str
    user_id: str
    client_id: str
    started: int
    last_refresh: int
    scope_names: tuple[str, ...]
    openid: bool
    requested_scope: str
    notes: dict[str, Any] = field(default_factory=dict)
    used_refresh_tokens: set[str] = field(default_factory=set)
    # Keycloak's client sessions: the clients that hold tokens of this session, each with the
    # scopes it was granted (client id -> scope names, openid, requested scope string).
    clients: dict[str, tuple[tuple[str, ...], bool, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients.setdefault(
            self.client_id, (self.scope_names, self.openid, self.requested_scope)
        )

    def has_client(self, client_id: str | None) -> bool:
        return client_id is not None and client_id in self.clients


class SessionStore:
    """In-memory sessions; the provider is single-process and forgets everything on restart."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def add(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def remove(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class TokenService:
    """Issues and verifies tokens for one realm, with Keycloak's claims and lifetimes."""

    def __init__(
        self, realm: Realm, key: SigningKey, issuer: str, clock: Clock | None = None
    ) -> None:
        self.realm = realm
        self.key = key
        self.issuer = issuer
        self.clock: Clock = clock or time.time
        self.sessions = SessionStore()
        self._refresh_secret = secrets.token_bytes(64)
        self._refresh_kid = str(uuid.uuid4())

    def now(self) -> int:
        return int(self.clock())

    # --- sessions -------------------------------------------------------------------------

    def start_session(
        self, user: User, client: Client, scopes: list[ClientScope], openid: bool, requested: str
    ) -> Session:
        now = self.now()
        session = Session(
            id=str(uuid.uuid4()),
            user_id=user.id,
            client_id=client.client_id,
            started=now,
            last_refresh=now,
            scope_names=tuple(s.name for s in scopes),
            openid=openid,
            requested_scope=requested,
            notes={"AUTH_TIME": now},
        )
        self.sessions.add(session)
        return session

    def session_expires_at(self, session: Session) -> int:
        return min(
            session.last_refresh + self.realm.sso_session_idle_timeout,
            session.started + self.realm.sso_session_max_lifespan,
        )

    def active_session(self, session_id: str | None) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        if self.now() >= self.session_expires_at(session):
            self.sessions.remove(session.id)
            return None
        return session

    def scopes_of(self, session: Session, client_id: str | None = None) -> list[ClientScope]:
        names = session.scope_names
        if client_id is not None and client_id in session.clients:
            names = session.clients[client_id][0]
        return [s for s in (self.realm.client_scope(n) for n in names) if s is not None]

    def client_state(self, session: Session, client_id: str) -> tuple[list[ClientScope], bool, str]:
        """The scopes, openid flag and requested scope string the client holds in the session."""
        names, openid, requested = session.clients.get(
            client_id, (session.scope_names, session.openid, session.requested_scope)
        )
        scopes = [s for s in (self.realm.client_scope(n) for n in names) if s is not None]
        return scopes, openid, requested

    def attach_client(
        self,
        session: Session,
        client: Client,
        scopes: list[ClientScope],
        openid: bool,
        requested: str,
    ) -> None:
        session.clients[client.client_id] = (tuple(s.name for s in scopes), openid, requested)

    # --- issuing --------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm="RS256",
            headers={"kid": self.key.kid, "typ": "JWT"},
        )

    def access_token_lifespan(self, client: Client) -> int:
        override = client.attributes.get("access.token.lifespan")
        if override and override.strip().lstrip("-").isdigit() and int(override) > 0:
            return int(override)
        return self.realm.access_token_lifespan

    def _base_claims(self, token_type: str, client: Client, exp: int, now: int) -> dict[str, Any]:
        return {
            "exp": exp,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "typ": token_type,
            "azp": client.client_id,
        }

    def issue(
        self,
        *,
        user: User,
        client: Client,
        scopes: list[ClientScope],
        openid: bool,
        requested_scope: str,
        session: Session | None,
        notes: dict[str, Any] | None = None,
        id_token_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A Keycloak token response: access token, ID token (openid), refresh token (sessions).

        `notes` add to the session's notes for this response (e.g. the acr level of a browser
        login); `id_token_claims` (e.g. `nonce`) go into the ID token only.
        """
        now = self.now()
        exp = now + self.access_token_lifespan(client)
        if session is not None:
            exp = min(exp, session.started + self.realm.sso_session_max_lifespan)
        session_notes = {**(session.notes if session is not None else {}), **(notes or {})}
        scope_string = token_scope_string(scopes, openid)

        ctx = ClaimContext(self.realm, client, user, scopes, requested_scope, session_notes)
        access = self._base_claims(ACCESS_TOKEN_TYPE, client, exp, now)
        if session is not None:
            access["sid"] = session.id
        access["scope"] = scope_string
        apply_mappers(ACCESS, access, ctx)
        if ctx.audiences:
            access["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else list(ctx.audiences)
        access_token = self._sign(_keycloak_order(access))

        response: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": exp - now,
            "refresh_expires_in": 0,
            "token_type": ACCESS_TOKEN_TYPE,
        }
        if openid:
            response["id_token"] = self._id_token(
                user,
                client,
                scopes,
                requested_scope,
                session,
                session_notes,
                access_token,
                exp,
                now,
                id_token_claims or {},
            )
        if session is not None:
            refresh_exp = self.session_expires_at(session)
            response["refresh_token"] = self._refresh_token(
                user, client, session, scope_string, refresh_exp, now
            )
            response["refresh_expires_in"] = refresh_exp - now
        response["not-before-policy"] = 0
        if session is not None:
            response["session_state"] = session.id
        response["scope"] = scope_string
        return response

    def _id_token(
        self,
        user: User,
        client: Client,
        scopes: list[ClientScope],
        requested_scope: str,
        session: Session | None,
        notes: dict[str, Any],
        access_token: str,
        exp: int,
        now: int,
        extra: dict[str, Any],
    ) -> str:
        ctx = ClaimContext(
            self.realm, client, user, scopes, requested_scope, notes, audiences=[client.client_id]
        )
        claims = self._base_claims(ID_TOKEN_TYPE, client, exp, now)
        claims["sub"] = user.id
        claims.update(extra)
        if session is not None:
            claims["sid"] = session.id
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims["at_hash"] = _b64url(digest[: len(digest) // 2])
        apply_mappers(ID, claims, ctx)
        claims["aud"] = ctx.audiences[0] if len(ctx.audiences) == 1 else list(ctx.audiences)
        return self._sign(_keycloak_order(claims))

    def _refresh_token(
        self, user: User, client: Client, session: Session, scope: str, exp: int, now: int
    ) -> str:
        claims = self._base_claims(REFRESH_TOKEN_TYPE, client, exp, now)
        claims.update({"aud": self.issuer, "sub": user.id, "sid": session.id, "scope": scope})
        return jwt.encode(
            _keycloak_order(claims),
            self._refresh_secret,
            algorithm=REFRESH_ALGORITHM,
            headers={"kid": self._refresh_kid, "typ": "JWT"},
        )

    # --- verifying ------------------------------------------------------------------------

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """Signature, issuer, type and expiry; raises InvalidToken."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("Token verification failed") from exc
        if header.get("alg") != "RS256" or header.get("kid") != self.key.kid:
            raise InvalidToken("Token verification failed")
        try:
            claims = jwt.decode(
                token,
                self.key.private_key.public_key(),
                algorithms=["RS256"],
                issuer=self.issuer,
                # Times are checked below against this provider's clock.
                options={"verify_aud": False, "require": ["exp", "iat", "iss"], **_NO_TIME_CHECKS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken("Token verification failed") from exc
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("Token verification failed")
        if claims["exp"] <= self.now():
            raise InvalidToken("Token is not active")
        return claims

    def verify_refresh_token(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self._refresh_secret,
                algorithms=[REFRESH_ALGORITHM],
                audience=self.issuer,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "sid", "azp"], **_NO_TIME_CHECKS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken("Invalid refresh token") from exc
        if claims.get("typ") != REFRESH_TOKEN_TYPE:
            raise InvalidToken("Invalid refresh token")
        if claims["exp"] <= self.now():
            raise InvalidToken("Token is not active")
        return claims


_ORDER = [
    "exp", "iat", "auth_time", "jti", "iss", "aud", "sub", "typ", "azp", "nonce", "sid", "at_hash",
    "acr",
    "allowed-origins", "realm_access", "resource_access", "scope",
]  # fmt: skip


def _keycloak_order(claims: dict[str, Any]) -> dict[str, Any]:
    """Lay claims out in Keycloak's order, which makes decoded tokens easy to compare."""
    ordered = {k: claims[k] for k in _ORDER if k in claims}
    ordered.update({k: v for k, v in claims.items() if k not in ordered})
    return ordered
