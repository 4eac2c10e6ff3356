"""Synchronous calls to another service's internal endpoints, with a service-account token.

The token comes from the identity provider's client-credentials grant (python-keycloak) and is
reused until shortly before it expires. Calls have a short timeout and fail with a clear 503
rather than hang.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from flask import g, has_request_context

from .errors import ServiceUnavailable
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class ServiceClient:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.timeout = settings.http_timeout_seconds
        self._oidc = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.http = requests.Session()

    def _client(self):
        """python-keycloak, imported on the first token: it takes a good part of a second to
        import, which a process should not spend before it answers (fast restarts)."""
        if self._oidc is None:
            from keycloak import KeycloakOpenID

            settings = self.settings
            self._oidc = KeycloakOpenID(
                server_url=settings.oidc.server_url,
                realm_name=settings.oidc.realm,
                client_id=settings.client_id,
                client_secret_key=settings.client_secret,
                timeout=int(max(1, self.timeout)),
            )
        return self._oidc

    def token(self) -> str:
        from keycloak.exceptions import KeycloakError

        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                try:
                    answer = self._client().token(grant_type="client_credentials")
                except (KeycloakError, requests.RequestException) as exc:
                    log.warning("service token not issued: %s", type(exc).__name__)
                    raise ServiceUnavailable("service.identity_provider_unreachable") from exc
                self._token = answer["access_token"]
                self._expires_at = time.monotonic() + max(5, int(answer["expires_in"]) - 30)
            return self._token

    def request(self, service: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``service``; a connection failure, time-out or 5xx becomes ``ServiceUnavailable``.
        Other statuses (404, 409 …) are the caller's to interpret."""
        url = self.settings.service_urls[service] + path
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        if has_request_context() and getattr(g, "request_id", None):
            headers.setdefault("X-Request-ID", g.request_id)  # one trace across services
        try:
            response = self.http.request(
                method, url, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            log.warning("%s %s on %s failed: %s", method, path.split("?")[0], service,
                        type(exc).__name__)
            raise ServiceUnavailable("service.unreachable", service=service) from exc
        if response.status_code >= 500:
            raise ServiceUnavailable("service.failed", service=service)
        return response

    def get(self, service: str, path: str, **kwargs: Any) -> requests.Response:
        return self.request(service, "GET", path, **kwargs)
