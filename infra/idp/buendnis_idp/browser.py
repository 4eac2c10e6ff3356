"""Browser login state and rules: redirect-URI matching, PKCE, login transactions, codes, SSO.

Everything here follows Keycloak 26 (RedirectUtils, PkceUtils, AuthorizationEndpointChecker,
OAuth2CodeParser); the Flask views that use it live in `login.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt

from .realm import Client
from .tokens import Session, TokenService

# Keycloak's cookie names; the identity cookie is an HMAC-signed token like Keycloak's.
AUTH_SESSION_COOKIE = "AUTH_SESSION_ID"
IDENTITY_COOKIE = "KEYCLOAK_IDENTITY"
SESSION_COOKIE = "KEYCLOAK_SESSION"
IDENTITY_TOKEN_TYPE = "Serialized-ID"

# The execution id of the username/password form in the browser flow (fixed, like an import).
LOGIN_EXECUTION = str(uuid.uuid5(uuid.NAMESPACE_URL, "buendnis-idp/auth-username-password-form"))

_PKCE_CHARS = re.compile(r"^[0-9A-Za-z\-._~]{43,128}$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


# --- redirect URIs (Keycloak's RedirectUtils) ---------------------------------------------------


# Percent-encoded characters that change how a URL is split (slash, backslash, dot, %, @, :, ?,
# #, NUL): a redirect URI that hides one in its path is refused rather than decoded one way here
# and another way by the browser (http://127.0.0.1:8090%2F@evil.example/cb).
_ENCODED_DELIMITER = re.compile(r"%(?:2f|5c|2e|25|40|3a|3f|23|00)", re.IGNORECASE)


def _refused(uri: str) -> bool:
    """Anything a browser might read differently from a plain string comparison."""
    if "\\" in uri or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return True
    try:
        parts = urlsplit(uri)
        _ = parts.port  # a malformed port raises ValueError
    except ValueError:
        return True
    if not parts.scheme or not parts.netloc:
        return True
    if "@" in parts.netloc or "%" in parts.netloc:
        return True  # user info ("https://good@evil") or an encoded authority
    if _ENCODED_DELIMITER.search(parts.path):
        return True
    return any(segment in (".", "..") for segment in parts.path.split("/"))


def _authority(uri: str) -> str:
    return urlsplit(uri).netloc


def _match(valid_uris: Iterable[str], redirect: str) -> str | None:
    """Keycloak's rule on the string as sent: equal, or a prefix of it when the pattern ends in
    ``*`` (query and fragment then not compared); the authority is always compared whole."""
    for valid in valid_uris:
        if valid == "*":
            return valid
        if valid.endswith("*") and "?" not in valid:
            r = redirect.split("?", 1)[0].split("#", 1)[0]
            prefix = valid[:-1]
            same_authority = _authority(r) == _authority(prefix)
            if same_authority and r.startswith(prefix):
                return valid
            if same_authority and prefix.endswith("/") and r == prefix[:-1]:
                return valid
        elif valid == redirect:
            return valid
    return None


def verify_redirect_uri(
    redirect_uri: str | None, valid_uris: Iterable[str], *, require: bool = True
) -> str | None:
    """The redirect URI to use (exactly as sent), or None when it does not match the client's
    patterns or could be read differently by a browser."""
    valid = [v for v in valid_uris if v]
    if redirect_uri is None:
        if require:
            return None
        single = [v for v in valid if "*" not in v]
        return single[0] if len(valid) == 1 and single else None
    if not valid or _refused(redirect_uri):
        return None
    match = _match(valid, redirect_uri)
    parts = urlsplit(redirect_uri)
    if match is None and parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS \
            and parts.port is not None:
        # RFC 8252: a loopback redirect may use any port when the pattern names none.
        without_port = urlunsplit(
            (parts.scheme, parts.hostname, parts.path, parts.query, parts.fragment)
        )
        match = _match([v for v in valid if urlsplit(v.rstrip("*")).port is None], without_port)
    return redirect_uri if match is not None else None


def post_logout_redirect_uris(client: Client) -> list[str]:
    """`post.logout.redirect.uris` ("##"-separated); "+" means the client's redirect URIs."""
    configured = client.attributes.get("post.logout.redirect.uris")
    if not configured:
        return []
    uris: list[str] = []
    for item in configured.split("##"):
        item = item.strip()
        if item == "+":
            uris.extend(client.redirect_uris)
        elif item and item != "-":
            uris.append(item)
    return uris


def add_params(uri: str, params: Iterable[tuple[str, str]], *, fragment: bool = False) -> str:
    encoded = urlencode(list(params))
    if not encoded:
        return uri
    if fragment:
        base, sep, existing = uri.partition("#")
        return f"{base}#{existing + '&' if existing else ''}{encoded}"
    base, sep, frag = uri.partition("#")
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    return f"{base}{joiner}{encoded}{sep}{frag}"


# --- PKCE (Keycloak's PkceUtils) ---------------------------------------------------------------


def valid_pkce_value(value: str) -> bool:
    return bool(_PKCE_CHARS.match(value))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_request_error(
    client: Client, challenge: str | None, method: str | None
) -> tuple[str | None, str | None]:
    """Check /auth's PKCE parameters; returns (error description, method to store)."""
    enforced = client.attributes.get("pkce.code.challenge.method") or ""
    if enforced:
        if method is None:
            return "Missing parameter: code_challenge_method", None
        if method != enforced:
            return "Invalid parameter: code challenge method is not configured one", None
        if challenge is None:
            return "Missing parameter: code_challenge", None
        if not valid_pkce_value(challenge):
            return "Invalid parameter: code_challenge", None
        return None, method
    if challenge is None and method is not None:
        return "Missing parameter: code_challenge", None
    if challenge is not None:
        method = method or "plain"
        if method not in ("plain", "S256"):
            return "Invalid parameter: code_challenge_method", None
        if not valid_pkce_value(challenge):
            return "Invalid parameter: code_challenge", None
    return None, method


def pkce_verify_error(
    challenge: str | None, method: str | None, verifier: str | None
) -> str | None:
    """Check the token request's code_verifier; returns Keycloak's error description."""
    if challenge is None:
        return None
    if verifier is None:
        return "PKCE code verifier not specified"
    if not valid_pkce_value(verifier):
        return "PKCE invalid code verifier"
    encoded = s256(verifier) if method == "S256" else verifier
    if not hmac.compare_digest(encoded.encode(), challenge.encode()):
        return "PKCE verification failed"
    return None


# --- state ------------------------------------------------------------------------------------


@dataclass
class AuthRequest:
    """The validated parameters of one /auth request."""

    client_id: str
    redirect_uri: str
    redirect_uri_param: str | None
    response_mode: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    prompt: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    locale: str
    auth_url: str  # to restart the login from the beginning


@dataclass
class LoginTransaction:
    """Keycloak's authentication session tab: one login form, bound to the browser's cookie."""

    tab_id: str
    root_id: str
    request: AuthRequest
    created: int
    session_code: str
    attempted_username: str = ""


@dataclass
class CodeData:
    code: str
    session_id: str
    client_id: str
    redirect_uri_param: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    acr: str
    expires: int
    used: bool = False


@dataclass
class LogoutConfirmation:
    code: str
    session_id: str | None
    redirect_uri: str | None
    state: str | None
    locale: str
    created: int


@dataclass
class BrowserState:
    """In-memory browser state: login transactions, authorization codes, logout confirmations."""

    tokens: TokenService
    transactions: dict[str, LoginTransaction] = field(default_factory=dict)
    codes: dict[str, CodeData] = field(default_factory=dict)
    logout_confirmations: dict[str, LogoutConfirmation] = field(default_factory=dict)
    cookie_secret: bytes = field(default_factory=lambda: secrets.token_bytes(64))
    lock: threading.Lock = field(default_factory=threading.Lock)

    # Keycloak's defaults: accessCodeLifespan 60 s, accessCodeLifespanLogin 1800 s.
    code_lifespan: int = 60
    login_lifespan: int = 1800

    def _sweep(self, now: int) -> None:
        for tab_id, tx in list(self.transactions.items()):
            if tx.created + self.login_lifespan <= now:
                del self.transactions[tab_id]
        for code, data in list(self.codes.items()):
            # Used codes are remembered a while longer so that a replay is recognised.
            if data.expires + 10 * self.code_lifespan <= now:
                del self.codes[code]
        for code, conf in list(self.logout_confirmations.items()):
            if conf.created + self.login_lifespan <= now:
                del self.logout_confirmations[code]

    # transactions

    def begin(self, root_id: str, request: AuthRequest) -> LoginTransaction:
        now = self.tokens.now()
        tx = LoginTransaction(
            tab_id=secrets.token_urlsafe(8),
            root_id=root_id,
            request=request,
            created=now,
            session_code=secrets.token_urlsafe(32),
        )
        with self.lock:
            self._sweep(now)
            self.transactions[tx.tab_id] = tx
        return tx

    def transaction(self, tab_id: str | None, root_id: str | None) -> LoginTransaction | None:
        if not tab_id or not root_id:
            return None
        now = self.tokens.now()
        with self.lock:
            self._sweep(now)
            tx = self.transactions.get(tab_id)
        if tx is None or not hmac.compare_digest(tx.root_id.encode(), root_id.encode()):
            return None
        return tx

    def rotate(self, tx: LoginTransaction) -> None:
        tx.session_code = secrets.token_urlsafe(32)

    def finish(self, tx: LoginTransaction) -> None:
        with self.lock:
            self.transactions.pop(tx.tab_id, None)

    # codes

    def issue_code(self, session: Session, client: Client, request: AuthRequest, acr: str) -> str:
        # Keycloak's code: <uuid>.<user session id>.<client uuid>.
        code = f"{uuid.uuid4()}.{session.id}.{client.id}"
        data = CodeData(
            code=code,
            session_id=session.id,
            client_id=client.client_id,
            redirect_uri_param=request.redirect_uri_param,
            scope=request.scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            acr=acr,
            expires=self.tokens.now() + self.code_lifespan,
        )
        with self.lock:
            self.codes[code] = data
        return code

    def redeem(self, code: str) -> tuple[str, CodeData | None]:
        """("ok" | "used" | "expired" | "unknown", data). A code is redeemed once only."""
        now = self.tokens.now()
        with self.lock:
            data = self.codes.get(code)
            if data is None:
                return "unknown", None
            if data.used:
                return "used", data
            data.used = True
            if data.expires <= now:
                return "expired", data
            return "ok", data

    # logout confirmations

    def confirmation(self, conf: LogoutConfirmation) -> None:
        with self.lock:
            self._sweep(self.tokens.now())
            self.logout_confirmations[conf.code] = conf

    def take_confirmation(self, code: str | None) -> LogoutConfirmation | None:
        if not code:
            return None
        with self.lock:
            return self.logout_confirmations.pop(code, None)

    # identity cookie

    def identity_cookie(self, session: Session) -> str:
        claims: dict[str, Any] = {
            "iat": self.tokens.now(),
            "jti": str(uuid.uuid4()),
            "iss": self.tokens.issuer,
            "sub": session.user_id,
            "typ": IDENTITY_TOKEN_TYPE,
            "sid": session.id,
        }
        return jwt.encode(claims, self.cookie_secret, algorithm="HS512")

    def session_from_cookie(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            claims = jwt.decode(
                value,
                self.cookie_secret,
                algorithms=["HS512"],
                issuer=self.tokens.issuer,
                options={"require": ["sub", "sid", "iss"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != IDENTITY_TOKEN_TYPE:
            return None
        session = self.tokens.active_session(claims["sid"])
        if session is None or session.user_id != claims["sub"] or not session.notes.get("SSO"):
            return None
        return session


def session_cookie_value(session: Session) -> str:
    """KEYCLOAK_SESSION in Keycloak 26: a SHA-256 of the session id, not the id itself."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(session.id.encode()).digest()).decode().rstrip("=")
    )
