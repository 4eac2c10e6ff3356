"""The gateway's public API, called with the signed-in user's own token.

The token lives in the server-side session. Authlib's OAuth2Session refreshes it shortly before
it expires and hands the new one back to be stored; when refreshing fails (the identity
provider's session ended) or the gateway answers 401, the user has to sign in again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app, g, request, session
from flask_babel import get_locale

from .auth import TOKEN_KEY, SignInRequired


class ApiUnavailable(Exception):
    """The gateway or a service behind it did not answer (5xx, timeout)."""


class ApiNotFound(Exception):
    """404 from the API: not there, or not the caller's to see."""


def is_field_error(value: Any) -> bool:
    """``{"code", "message", "params"}``: one field error of an API error body."""
    return isinstance(value, dict) and "code" in value and "message" in value


def error_text(value: Any) -> str:
    """A field error's message (already in the page's language: the API answers in the
    ``Accept-Language`` it is sent), or a plain text as it is."""
    return str(value["message"]) if is_field_error(value) else str(value)


@dataclass
class ApiError(Exception):
    """A 4xx answer other than 401/404: the API's error body, for the page to show. The API
    answers in the page's language (this front end sends ``Accept-Language``) and names each
    error by its code (``error_code``), so nothing is translated or parsed here."""

    status: int
    message: str
    errors: dict[str, Any] = field(default_factory=dict)
    code: str | None = None

    @property
    def localized_message(self) -> str:
        """``message``, in the page's language as the API wrote it."""
        return self.message

    def field_errors(self) -> dict[str, str]:
        """``{"contact.phone": "…"}``: nested field errors flattened to dotted names."""
        flat: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if is_field_error(value):
                flat[prefix] = error_text(value)
            elif isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
            elif isinstance(value, list):
                if value and all(is_field_error(item) or isinstance(item, str)
                                 for item in value):
                    flat[prefix] = " ".join(error_text(item) for item in value)
                else:
                    for index, inner in enumerate(value):
                        walk(f"{prefix}.{index}" if prefix else str(index), inner)
            else:
                flat[prefix] = str(value)

        walk("", self.errors)
        return flat


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]
    content: bytes = b""

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def pagination(self) -> dict[str, Any]:
        raw = self.headers.get("X-Pagination")
        return json.loads(raw) if raw else {}


# One connection pool for all requests to the gateway: pages reuse connections (keep-alive)
# instead of opening one per page. urllib3's pools are thread-safe.
_GATEWAY_ADAPTER = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
ORGANIZATIONS_KEY = "organizations"
ORGANIZATIONS_MAX_AGE_SECONDS = 600


def _store_token(token: dict, refresh_token: str | None = None, access_token: str | None = None):
    session[TOKEN_KEY] = dict(token)


def _client() -> OAuth2Session:
    if "api_client" in g:
        return g.api_client
    token = session.get(TOKEN_KEY)
    if not token:
        raise SignInRequired()
    settings = current_app.config["WEB_SETTINGS"]
    client = OAuth2Session(
        client_id=settings.client_id,
        token=token,
        token_endpoint=current_app.extensions["buendnis_oidc"].token_endpoint(),
        update_token=_store_token,
        leeway=30,
    )
    client.mount("http://", _GATEWAY_ADAPTER)
    client.mount("https://", _GATEWAY_ADAPTER)
    g.api_client = client
    return client


def call(method: str, path: str, *, params: dict | None = None, json_body: Any = None,
         headers: dict[str, str] | None = None, files: dict | None = None,
         raw: bool = False) -> ApiResponse:
    """One request to the gateway as the signed-in user; raises on anything but 2xx/304."""
    settings = current_app.config["WEB_SETTINGS"]
    client = _client()
    cleaned = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
    request_headers = {"Accept-Language": str(get_locale() or "de"), **(headers or {})}
    request_id = g.get("request_id")
    if request_id:
        request_headers["X-Request-ID"] = request_id
    # The browser's address: the gateway counts its per-address limit by it when this front
    # end is one of its trusted proxies (GATEWAY_TRUSTED_PROXIES), so that one person's burst
    # does not use up the limit of everyone signed in here.
    if request.remote_addr:
        request_headers["X-Forwarded-For"] = request.remote_addr
    try:
        response = client.request(
            method, settings.gateway_url + path, params=cleaned, json=json_body, files=files,
            headers=request_headers, timeout=settings.http_timeout_seconds,
        )
    except AuthlibBaseError as exc:  # the refresh token was refused: the sign-in has ended
        raise SignInRequired() from exc
    except requests.RequestException as exc:
        raise ApiUnavailable(str(type(exc).__name__)) from exc
    return _answer(response, raw=raw)


def _answer(response: requests.Response, *, raw: bool) -> ApiResponse:
    status = response.status_code
    if status == 401:
        raise SignInRequired()
    if status == 404:
        raise ApiNotFound()
    if status >= 500:
        raise ApiUnavailable(str(status))
    body: Any = None
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type and response.content:
        body = response.json()
    if status >= 400:
        details = body if isinstance(body, dict) else {}
        raise ApiError(status, details.get("message") or response.reason or str(status),
                       details.get("errors") or {}, details.get("error_code"))
    return ApiResponse(status, body, dict(response.headers), response.content if raw else b"")


def get(path: str, **params: Any) -> ApiResponse:
    return call("GET", path, params=params)


def post(path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
    return call("POST", path, json_body=body, **kwargs)


def patch(path: str, body: Any, *, etag: str | None) -> ApiResponse:
    return call("PATCH", path, json_body=body, headers={"If-Match": etag} if etag else None)


def delete(path: str) -> ApiResponse:
    return call("DELETE", path)


def organizations() -> list[dict[str, Any]]:
    """The organisations the user may address (``GET /api/v1/organizations``), kept in the
    session for a few minutes: nearly every page names organisations, and they rarely change."""
    kept = session.get(ORGANIZATIONS_KEY)
    if kept and time.time() - kept["at"] < ORGANIZATIONS_MAX_AGE_SECONDS:
        return kept["list"]
    found = get("/api/v1/organizations").body or []
    session[ORGANIZATIONS_KEY] = {"at": time.time(), "list": found}
    return found
