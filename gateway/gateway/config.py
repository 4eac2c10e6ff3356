from __future__ import annotations

from dataclasses import dataclass

from buendnis_common.settings import OidcSettings, env_float, redis_url, service_urls


@dataclass(frozen=True)
class GatewaySettings:
    oidc: OidcSettings
    redis_url: str
    service_urls: dict[str, str]
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_env(cls) -> GatewaySettings:
        return cls(
            oidc=OidcSettings.from_env(),
            redis_url=redis_url(),
            service_urls=service_urls(),
            connect_timeout=env_float("GATEWAY_CONNECT_TIMEOUT_SECONDS", 2.0),
            read_timeout=env_float("GATEWAY_READ_TIMEOUT_SECONDS", 15.0),
        )
