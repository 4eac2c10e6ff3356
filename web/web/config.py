"""Settings of the web front end, from the environment with safe local defaults."""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from buendnis_common.settings import (
    SettingsError,
    env_int,
    env_secret,
    env_str,
    is_development,
)

#: The value in ``.env.example``; refused outside development.
DEMO_SECRET_KEY = "demo-web-secret-key-change-me-at-least-32-characters"


@dataclass(frozen=True)
class WebSettings:
    public_url: str
    gateway_url: str
    oidc_server_url: str
    oidc_public_url: str
    realm: str
    client_id: str
    redis_url: str
    secret_key: str
    session_hours: int
    pending_form_minutes: int
    http_timeout_seconds: float
    # Abuse limits (the front end is reachable without signing in): see web/web/protection.py.
    sign_in_session_minutes: int = 15
    pending_form_max_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 12 * 1024 * 1024
    rate_limit_per_user: str = "300/minute"
    rate_limit_per_address: str = "600/minute"
    rate_limit_sign_in: str = "30/minute"
    proxy_count: int = 0

    @property
    def discovery_url(self) -> str:
        return f"{self.oidc_server_url}/realms/{self.realm}/.well-known/openid-configuration"

    @classmethod
    def from_env(cls) -> WebSettings:
        port = env_int("WEB_PORT", 8090)
        gateway_port = env_int("GATEWAY_PORT", 8000)
        idp_port = env_int("IDP_PORT", 8080)
        server_url = env_str("OIDC_SERVER_URL", f"http://127.0.0.1:{idp_port}").rstrip("/")
        return cls(
            public_url=env_str("WEB_URL", f"http://127.0.0.1:{port}").rstrip("/"),
            gateway_url=env_str("GATEWAY_URL", f"http://127.0.0.1:{gateway_port}").rstrip("/"),
            oidc_server_url=server_url,
            # Where the browser reaches the identity provider, when it differs from the
            # address the front end uses (containers: keycloak:8080 inside, localhost outside).
            oidc_public_url=env_str("OIDC_PUBLIC_URL", server_url).rstrip("/"),
            realm=env_str("OIDC_REALM", "buendnis"),
            client_id=env_str("WEB_CLIENT_ID", "buendnis-web"),
            # Sessions and rate limits: a Redis of their own (evicting under memory pressure),
            # never the Celery broker's (which must never evict a queue).
            redis_url=env_str("WEB_REDIS_URL",
                              f"redis://127.0.0.1:{env_int('WEB_REDIS_PORT', 6380)}/0"),
            secret_key=_secret_key(),
            session_hours=env_int("WEB_SESSION_HOURS", 10),
            pending_form_minutes=env_int("WEB_PENDING_FORM_MINUTES", 15),
            http_timeout_seconds=float(env_str("WEB_HTTP_TIMEOUT_SECONDS", "30")),
            sign_in_session_minutes=env_int("WEB_SIGN_IN_SESSION_MINUTES", 15),
            pending_form_max_bytes=env_int("WEB_PENDING_FORM_MAX_BYTES", 64 * 1024),
            max_body_bytes=env_int("WEB_MAX_BODY_BYTES", 1024 * 1024),
            max_upload_bytes=env_int("WEB_MAX_UPLOAD_BYTES", 12 * 1024 * 1024),
            rate_limit_per_user=env_str("WEB_RATE_LIMIT_PER_USER", "300/minute"),
            rate_limit_per_address=env_str("WEB_RATE_LIMIT_PER_ADDRESS", "600/minute"),
            rate_limit_sign_in=env_str("WEB_RATE_LIMIT_SIGN_IN", "30/minute"),
            # Reverse proxies in front of the pages that set X-Forwarded-For (0: none).
            proxy_count=env_int("WEB_PROXY_COUNT", 0),
        )


def _secret_key() -> str:
    """``WEB_SECRET_KEY``, or for a local run a random key kept under ``BUENDNIS_VAR``.

    The key signs the CSRF tokens; every worker process must share it, so a local run keeps
    one in a file instead of making a new one per process. Containers must set the variable.
    """
    if not is_development():
        # Outside development: set, at least 32 characters, not the demo value of .env.example.
        return env_secret("WEB_SECRET_KEY", DEMO_SECRET_KEY, min_length=32)
    value = os.environ.get("WEB_SECRET_KEY")
    if value:
        if len(value) < 32:
            raise SettingsError("WEB_SECRET_KEY: at least 32 characters")
        return value
    if os.environ.get("WEB_REQUIRE_SECRET_KEY", "").lower() in ("1", "true", "yes"):
        raise SettingsError("WEB_SECRET_KEY is required")
    path = Path(env_str("BUENDNIS_VAR", "var")) / "web-secret-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two workers starting together, one writes and both read the same key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = None
    if fd is not None:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.05)
    raise SettingsError(f"{path}: empty secret key file")
