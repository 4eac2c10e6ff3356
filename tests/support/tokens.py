"""Forged tokens, for proving that the gateway and the services refuse them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.platform import Platform


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenForge:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.key = serialization.load_pem_private_key(platform.key_file.read_bytes(), None)
        certs = requests.get(
            f"{platform.idp_url}/realms/buendnis/protocol/openid-connect/certs", timeout=5
        ).json()
        self.kid = certs["keys"][0]["kid"]
        self.issuer = f"{platform.idp_url}/realms/buendnis"

    def claims_of(self, username: str) -> dict[str, Any]:
        """The claims the identity provider really issues for this user."""
        return jwt.decode(self.platform.token(username), options={"verify_signature": False})

    def sign(self, claims: dict[str, Any], *, key=None, headers: dict | None = None) -> str:
        return jwt.encode(
            claims, key or self.key, algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )

    def like(self, username: str, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {**self.claims_of(username), "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def unsigned(self, claims: dict[str, Any]) -> str:
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."

    def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """The classic key-confusion attack: HMAC keyed with the realm's public key."""
        public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    @staticmethod
    def other_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
