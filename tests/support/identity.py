"""Access tokens for in-process tests, minted by a key of the test session.

The claims are those the identity provider issues from the realm file (Keycloak's shapes:
``realm_access.roles``, the ``organization`` claim with id and attributes, ``azp``), so a service
sees a demo user exactly as it sees them behind the gateway. The apps trust the key because the
test replaces their key cache with ``TestJwks`` (nothing in the services reads a key from
anywhere but the realm's JWKS URL: production is unchanged). The claims are built from the realm
files here; no test yet compares them with the real identity provider's tokens.
"""
from __future__ import annotations

import json
import time
import uuid
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.algorithms import RSAAlgorithm

from buendnis_common.auth import ALGORITHM, JwksCache

REPO = Path(__file__).resolve().parents[2]
REALM_FILE = REPO / "infra/keycloak/buendnis-realm.json"
DEMO_USERS_FILE = REPO / "infra/keycloak/buendnis-realm-demo-users.json"
ISSUER = "http://idp.test/realms/buendnis"
AUDIENCE = "buendnis-api"


class Realm:
    """Users, roles and organisations of the realm file and the demo users."""

    def __init__(self) -> None:
        realm = json.loads(REALM_FILE.read_text())
        demo = json.loads(DEMO_USERS_FILE.read_text())
        self.users = {u["username"]: u for u in [*realm["users"], *demo["users"]]}
        self.organizations = {o["alias"]: dict(o) for o in realm["organizations"]}
        self.member_of: dict[str, str] = {}
        for org in [*realm["organizations"], *demo["organizations"]]:
            for member in org.get("members") or []:
                name = member if isinstance(member, str) else member["username"]
                self.member_of[name] = org["alias"]

    def claims(self, username: str) -> dict[str, Any]:
        user = self.users[username]
        claims: dict[str, Any] = {
            "sub": user["id"], "preferred_username": username, "typ": "Bearer",
            "azp": user.get("serviceAccountClientId") or "buendnis-cli",
            "realm_access": {"roles": list(user.get("realmRoles") or [])},
        }
        alias = self.member_of.get(username)
        if alias and not user.get("serviceAccountClientId"):
            org = self.organizations[alias]
            claims["organization"] = {
                alias: {"id": org["id"], **{k: list(v) for k, v in
                                            (org.get("attributes") or {}).items()}}}
        return claims


class TestKey:
    """An RSA key of this test session and the JWKS that publishes it."""

    __test__ = False  # not a test class for pytest

    def __init__(self, kid: str = "test-session-key") -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.realm = Realm()

    @cached_property
    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM,
                          headers={"kid": self.kid, "typ": "JWT"})

    def claims(self, username: str, *, lifetime: int = 3600, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {**self.realm.claims(username), "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                  "exp": now + lifetime, "jti": str(uuid.uuid4())}
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(self, username: str, **changes: Any) -> str:
        """An access token of a demo user (or ``service-account-<service>-service``)."""
        return self.sign(self.claims(username, **changes))

    def service_token(self, service: str) -> str:
        return self.token(f"service-account-{service}-service")


class TestJwks(JwksCache):
    """The realm's key cache, answered from the test key instead of the identity provider."""

    __test__ = False

    def __init__(self, key: TestKey) -> None:
        super().__init__("http://idp.test/jwks-not-fetched", min_refresh_seconds=0)
        self.test_key = key

    def _fetch(self) -> None:
        self.fetch_count += 1
        self._fetched_at = time.monotonic()
        self._keys = {jwk["kid"]: PyJWK(jwk, algorithm=ALGORITHM)
                      for jwk in self.test_key.jwks["keys"]}
