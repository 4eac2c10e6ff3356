"""Bearer-token verification, the same in the gateway and in every service (defence in depth).

Only RS256 tokens signed by a key of the realm's JWKS are accepted. The key set is cached and
refetched only when a token names a ``kid`` we have not seen, and then at most once per
``min_refresh_seconds``, so that a stream of forged ``kid`` values cannot make us hammer the
identity provider.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from jwt import PyJWK

from .errors import Forbidden, ServiceUnavailable, Unauthorized
from .settings import OidcSettings

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
SERVICE_ROLE = "service"
# The realm roles the platform gives meaning to (Keycloak adds defaults such as offline_access).
PLATFORM_ROLES = frozenset({"case_worker", "coordinator", "core_group", "ministry", "auditor"})


class JwksCache:
    """The realm's signing keys by ``kid``."""

    def __init__(
        self, url: str, *, min_refresh_seconds: float = 10.0, timeout: float = 3.0
    ) -> None:
        self.url = url
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout = timeout
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def _fetch(self) -> None:
        self.fetch_count += 1
        self._fetched_at = time.monotonic()
        response = requests.get(self.url, timeout=self.timeout)
        response.raise_for_status()
        keys: dict[str, PyJWK] = {}
        for jwk in response.json().get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue
            try:
                keys[jwk["kid"]] = PyJWK(jwk, algorithm=ALGORITHM)
            except jwt.PyJWKError:
                log.warning("ignoring an unusable key in the realm's JWKS")
        self._keys = keys

    def key(self, kid: str) -> PyJWK | None:
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            due = self._fetched_at is None or (
                time.monotonic() - self._fetched_at >= self.min_refresh_seconds
            )
            if due:
                try:
                    self._fetch()
                except (requests.RequestException, ValueError) as exc:
                    log.warning("could not fetch the realm's keys: %s", type(exc).__name__)
                    if not self._keys:
                        raise ServiceUnavailable("auth.identity_provider_unreachable") from exc
            return self._keys.get(kid)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person of one organisation, or a service account."""

    subject: str
    username: str
    client_id: str
    roles: frozenset[str]
    org_alias: str | None = None
    org_id: str | None = None
    org_type: str | None = None
    alliance: str | None = None

    @property
    def is_service(self) -> bool:
        return self.org_alias is None and SERVICE_ROLE in self.roles

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def principal_from_claims(claims: dict[str, Any], *, require_organization: bool) -> Principal:
    roles = frozenset((claims.get("realm_access") or {}).get("roles") or [])
    organizations = claims.get("organization") or {}
    if isinstance(organizations, list):  # Keycloak's list form, without attributes
        organizations = {alias: {} for alias in organizations}
    if not isinstance(organizations, dict):
        raise Unauthorized("auth.organization_claim_malformed")
    base = {
        "subject": str(claims.get("sub") or ""),
        "username": str(claims.get("preferred_username") or claims.get("sub") or ""),
        "client_id": str(claims.get("azp") or claims.get("client_id") or ""),
        "roles": roles,
    }
    if not organizations:
        if require_organization:
            raise Forbidden("auth.no_organization")
        return Principal(**base)
    if len(organizations) > 1:
        raise Forbidden("auth.several_organizations")
    (alias, attributes), = organizations.items()
    attributes = attributes if isinstance(attributes, dict) else {}
    return Principal(
        **base,
        org_alias=str(alias),
        org_id=_first(attributes.get("id")),
        org_type=_first(attributes.get("type")),
        alliance=_first(attributes.get("alliance")),
    )


class TokenVerifier:
    def __init__(self, settings: OidcSettings, *, jwks: JwksCache | None = None) -> None:
        self.settings = settings
        self.jwks = jwks or JwksCache(
            settings.jwks_url, min_refresh_seconds=settings.jwks_min_refresh_seconds
        )

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of an access token, or ``Unauthorized`` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("auth.token_malformed") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("auth.token_algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("auth.token_no_key_id")
        key = self.jwks.key(kid)
        if key is None:
            raise Unauthorized("auth.token_unknown_key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("auth.token_expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("auth.token_not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("auth.token_wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("auth.token_wrong_issuer") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("auth.token_invalid") from None
        if claims.get("typ", "Bearer") != "Bearer":
            raise Unauthorized("auth.token_not_access_token")
        return claims

    def principal(self, token: str, *, require_organization: bool = True) -> Principal:
        return principal_from_claims(
            self.claims(token), require_organization=require_organization
        )


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("auth.sign_in_required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.bearer_required")
    return token.strip()
