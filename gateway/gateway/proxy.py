"""Forwarding a verified request to the service that owns it."""
from __future__ import annotations

import logging
import threading

import requests
from flask import Response, g, request

from buendnis_common.errors import DomainError

log = logging.getLogger(__name__)

# What a client may send on, and what a service may send back; nothing else crosses.
REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "Accept-Language", "If-Match",
                   "If-None-Match")
RESPONSE_HEADERS = ("Content-Type", "ETag", "Location", "X-Pagination", "Retry-After",
                    "Content-Disposition", "Cache-Control")


class BadGateway(DomainError):
    status = 502


class GatewayTimeout(DomainError):
    status = 504


# Requests that legitimately take long (a 20,000-row import) wait this long instead.
SLOW_PATHS = {"/api/v1/participants/import": 120.0}


class Proxy:
    def __init__(self, service_urls: dict[str, str], *, connect_timeout: float,
                 read_timeout: float) -> None:
        self.service_urls = service_urls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._local = threading.local()  # a connection pool per thread (gthread workers)

    def http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def forward(self, service: str, *, anonymous: bool = False,
                extra_headers: tuple[str, ...] = ()) -> Response:
        """``anonymous``: a public route; the caller's Authorization header stays here.
        ``extra_headers``: what this one route needs besides (a webhook's signature)."""
        url = self.service_urls[service] + request.full_path.rstrip("?")
        headers = {
            name: request.headers[name] for name in (*REQUEST_HEADERS, *extra_headers)
            if name in request.headers and not (anonymous and name == "Authorization")
        }
        headers["X-Request-ID"] = g.request_id
        headers["X-Forwarded-For"] = request.remote_addr or ""
        try:
            upstream = self.http().request(
                request.method,
                url,
                headers=headers,
                data=request.get_data(),
                timeout=(self.connect_timeout,
                         SLOW_PATHS.get(request.path, self.read_timeout)),
                allow_redirects=False,
            )
        except requests.Timeout:
            log.warning("%s did not answer in time", service)
            raise GatewayTimeout("gateway.service_timeout", service=service) from None
        except requests.ConnectionError:
            log.warning("%s is not reachable", service)
            raise BadGateway("gateway.service_unreachable", service=service) from None
        response = Response(upstream.content, status=upstream.status_code)
        for name in RESPONSE_HEADERS:
            if name in upstream.headers:
                response.headers[name] = upstream.headers[name]
        return response
