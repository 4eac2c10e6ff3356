from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from buendnis_common.settings import (
    OidcSettings,
    ServiceSettings,
    env_database_url,
    env_float,
    env_int,
    env_list,
    env_str,
    redis_url,
    service_urls,
)


@dataclass(frozen=True)
class GatewaySettings:
    oidc: OidcSettings
    database_url: str
    redis_url: str
    service_urls: dict[str, str]
    connect_timeout: float
    read_timeout: float
    rate_limit_per_user: str
    rate_limit_per_address: str
    max_body_bytes: int
    cors_origins: list[str]
    # Addresses or networks (CIDR) of proxies whose X-Forwarded-For names the client: the web
    # front end, a load balancer. Anyone else's X-Forwarded-For is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The open offer directory (/hsds/, no token): its own limit per client address.
    rate_limit_hsds_per_address: str = "120/minute"

    def runtime_settings(self) -> ServiceSettings:
        """The settings of the gateway's database and Celery app (the audit trail)."""
        return dataclasses.replace(
            ServiceSettings.from_env("gateway"), database_url=self.database_url,
            redis_url=self.redis_url, oidc=self.oidc, service_urls=self.service_urls,
        )

    @classmethod
    def from_env(cls) -> GatewaySettings:
        return cls(
            oidc=OidcSettings.from_env(),
            database_url=env_database_url("GATEWAY_DATABASE_URL",
                                          "sqlite:///var/gateway.sqlite3"),
            redis_url=redis_url(),
            service_urls=service_urls(),
            connect_timeout=env_float("GATEWAY_CONNECT_TIMEOUT_SECONDS", 2.0),
            read_timeout=env_float("GATEWAY_READ_TIMEOUT_SECONDS", 15.0),
            rate_limit_per_user=env_str("RATE_LIMIT_PER_USER", "600/minute"),
            rate_limit_per_address=env_str("RATE_LIMIT_PER_ADDRESS", "1200/minute"),
            max_body_bytes=env_int("GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024),
            cors_origins=env_list("CORS_ORIGINS", ""),
            trusted_proxies=tuple(env_list("GATEWAY_TRUSTED_PROXIES", "")),
            rate_limit_hsds_per_address=env_str("RATE_LIMIT_HSDS_PER_ADDRESS", "120/minute"),
        )
