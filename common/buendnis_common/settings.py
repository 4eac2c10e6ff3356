"""Typed settings from the environment, with safe local defaults.

Every setting a service reads comes through these helpers, so that a wrong value fails at start-up
with the variable's name rather than somewhere deep inside a request.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(RuntimeError):
    """A setting in the environment is missing or malformed."""


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise SettingsError(f"{name} must be set")
        return default
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


ENVIRONMENTS = ("development", "production")

#: Every secret read through :func:`env_secret`, with its demo default (name → default).
DEMO_SECRETS: dict[str, str] = {}


def buendnis_env() -> str:
    """``BUENDNIS_ENV``: ``development`` (the default, demo secrets allowed) or ``production``."""
    value = env_str("BUENDNIS_ENV", "development").strip().lower()
    if value not in ENVIRONMENTS:
        raise SettingsError(f"BUENDNIS_ENV must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return value


def is_development() -> bool:
    return buendnis_env() == "development"


def env_secret(name: str, demo_default: str, *, min_length: int = 0) -> str:
    """A secret or key: the demo default in development, a real value everywhere else.

    Outside development (``BUENDNIS_ENV=production``) an unset variable, the demo default, any
    other setting's demo default or a value starting with ``demo-`` (the values of
    ``.env.example``) stop the process at start-up with a message naming the variable.
    """
    DEMO_SECRETS[name] = demo_default
    value = os.environ.get(name) or ""
    if value and min_length and len(value) < min_length:
        raise SettingsError(f"{name}: at least {min_length} characters")
    if is_development():
        return value or demo_default
    if not value:
        raise SettingsError(
            f"{name} must be set when BUENDNIS_ENV={buendnis_env()}: its default is a demo value. "
            f"{_SECRET_ADVICE}"
        )
    if value in DEMO_SECRETS.values() or value.lower().startswith("demo-"):
        raise SettingsError(
            f"{name} is still a demo value; BUENDNIS_ENV={buendnis_env()} refuses demo secrets. "
            f"{_SECRET_ADVICE}"
        )
    return value


def env_database_url(name: str, default: str) -> str:
    """A database URL; outside development its password must not be a demo value (compose's
    ``intake-demo``, ``gateway-app-demo`` … or anything starting with ``demo-``)."""
    url = env_str(name, default)
    if not url or is_development():
        return url
    try:
        password = make_url(url).password
    except ArgumentError:
        raise SettingsError(f"{name} is not a database URL") from None
    if password and (password.lower().endswith("-demo") or password.lower().startswith("demo-")
                     or password in DEMO_SECRETS.values()):
        raise SettingsError(
            f"{name} holds a demo database password; BUENDNIS_ENV={buendnis_env()} refuses demo "
            f"secrets. Give the database role a password of your own (compose: the *_DB_PASSWORD "
            f"variables in .env). {_SECRET_ADVICE}"
        )
    return url


_SECRET_ADVICE = (
    "Set it to a long random value of your own (for example the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), the same wherever the "
    "same variable is used, or set BUENDNIS_ENV=development for a local demo."
)


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name) or default
    return [part.strip() for part in raw.split(",") if part.strip()]


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``"24h"`` → 24 hours. Units: ``s``, ``m``, ``h``, ``d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h or 1d")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def env_durations(name: str, default: str) -> list[timedelta]:
    try:
        return [parse_duration(part) for part in env_list(name, default)]
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class OidcSettings:
    """Where tokens come from and what a valid one looks like."""

    server_url: str
    realm: str
    issuer: str
    jwks_url: str
    token_url: str
    audience: str
    jwks_min_refresh_seconds: float
    leeway_seconds: int

    @classmethod
    def from_env(cls) -> OidcSettings:
        idp_port = env_int("IDP_PORT", 8080)
        server_url = env_str("OIDC_SERVER_URL", f"http://127.0.0.1:{idp_port}").rstrip("/")
        realm = env_str("OIDC_REALM", "buendnis")
        realm_url = f"{server_url}/realms/{realm}"
        return cls(
            server_url=server_url,
            realm=realm,
            issuer=env_str("OIDC_ISSUER", realm_url),
            jwks_url=env_str("OIDC_JWKS_URL", f"{realm_url}/protocol/openid-connect/certs"),
            token_url=env_str("OIDC_TOKEN_URL", f"{realm_url}/protocol/openid-connect/token"),
            audience=env_str("OIDC_AUDIENCE", "buendnis-api"),
            jwks_min_refresh_seconds=env_float("OIDC_JWKS_MIN_REFRESH_SECONDS", 10.0),
            leeway_seconds=env_int("OIDC_LEEWAY_SECONDS", 0),
        )


@dataclass(frozen=True)
class ServiceSettings:
    """What every service reads alike; ``name`` is also its queue and its variable prefix."""

    name: str
    database_url: str
    redis_url: str
    oidc: OidcSettings
    client_id: str
    client_secret: str
    service_urls: dict[str, str]
    http_timeout_seconds: float
    relay_interval_seconds: float

    @classmethod
    def from_env(cls, name: str) -> ServiceSettings:
        prefix = name.upper()
        return cls(
            name=name,
            database_url=env_database_url(f"{prefix}_DATABASE_URL",
                                          f"sqlite:///var/{name}.sqlite3"),
            redis_url=redis_url(),
            oidc=OidcSettings.from_env(),
            client_id=env_str(f"{prefix}_CLIENT_ID", f"{name}-service"),
            # The demo realm's documented demo secret; production must set the variable. The
            # gateway has no client of its own (it forwards the caller's token).
            client_secret=(
                env_secret(f"{prefix}_CLIENT_SECRET", f"demo-{name}-secret")
                if name in SERVICE_PORTS else env_str(f"{prefix}_CLIENT_SECRET", "")
            ),
            service_urls=service_urls(),
            http_timeout_seconds=env_float("SERVICE_HTTP_TIMEOUT_SECONDS", 3.0),
            relay_interval_seconds=env_float("OUTBOX_RELAY_INTERVAL_SECONDS", 2.0),
        )


SERVICE_PORTS = {"intake": 8001, "referrals": 8002, "notifications": 8003}


def service_urls() -> dict[str, str]:
    """Where each service answers; by default on loopback at its port (``INTAKE_PORT`` …)."""
    urls = {}
    for name, default_port in SERVICE_PORTS.items():
        port = env_int(f"{name.upper()}_PORT", default_port)
        urls[name] = env_str(f"{name.upper()}_URL", f"http://127.0.0.1:{port}").rstrip("/")
    return urls


def redis_url() -> str:
    return env_str("REDIS_URL", f"redis://127.0.0.1:{env_int('REDIS_PORT', 6379)}/0")
