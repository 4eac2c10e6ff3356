"""Rate limits, body limit, security headers and CORS at the public entry."""
from __future__ import annotations

import uuid

import pytest
import requests

from buendnis_common.settings import SettingsError
from gateway.app import create_app
from tests.test_gateway_routing import gateway_settings

pytestmark = pytest.mark.platform


def bearer(platform, username="cw.jmd-leverkusen") -> dict:
    return {"Authorization": f"Bearer {platform.token(username)}"}


def test_a_user_over_the_limit_gets_429_with_retry_after(platform):
    app = create_app(gateway_settings(platform, rate_limit_per_user="5/minute"))
    client = app.test_client()
    headers = bearer(platform, "cw.awo-leverkusen")
    codes = [client.get("/api/v1/me", headers=headers).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    limited = client.get("/api/v1/me", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json["code"] == 429 and limited.json["status"] == "Too Many Requests"
    # Another user from the same address is not limited by the first user's use.
    assert client.get("/api/v1/me", headers=bearer(platform, "cw.jmd-neuss")).status_code == 200


def test_one_address_over_its_limit_gets_429_whoever_signs_in(platform):
    client = create_app(gateway_settings(platform, rate_limit_per_address="4/minute")
                        ).test_client()
    address = {"REMOTE_ADDR": f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    codes = [client.get("/api/v1/me", headers={"Authorization": "Bearer forged"},
                        environ_base=address).status_code for _ in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]  # token guessing counts too
    assert client.get("/healthz", environ_base=address).status_code == 200  # health is exempt


def test_a_body_over_the_limit_is_413(platform):
    client = create_app(gateway_settings(platform, max_body_bytes=1024)).test_client()
    response = client.post("/api/v1/participants", data=b"x" * 4096, headers={
        **bearer(platform), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json["code"] == 413


def test_security_headers_and_no_caching_of_personal_data(platform):
    response = requests.get(f"{platform.gateway_url}/api/v1/participants",
                            headers=bearer(platform), timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_cors_only_for_configured_origins(platform):
    client = create_app(gateway_settings(platform, cors_origins=["https://web.buendnis.example"])
                        ).test_client()
    preflight = client.options("/api/v1/participants", headers={
        "Origin": "https://web.buendnis.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://web.buendnis.example"
    other = client.options("/api/v1/participants", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers
    plain = requests.get(f"{platform.gateway_url}/api/v1/me", timeout=10, headers={
        **bearer(platform), "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_behind_a_trusted_proxy_each_browsers_address_has_its_own_limit(platform):
    """The web front end calls for all its users from one address: the browser's address it
    forwards counts, so one person's burst does not use up everyone's limit."""
    web_front_end = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    client = create_app(gateway_settings(platform, rate_limit_per_address="4/minute",
                                         trusted_proxies=(web_front_end,))).test_client()
    proxy = {"REMOTE_ADDR": web_front_end}
    hammering = {"X-Forwarded-For": "203.0.113.10", **bearer(platform)}
    codes = [client.get("/api/v1/me", headers=hammering, environ_base=proxy).status_code
             for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2
    other = {"X-Forwarded-For": "203.0.113.11", **bearer(platform, "cw.jmd-neuss")}
    assert client.get("/api/v1/me", headers=other, environ_base=proxy).status_code == 200
    # A load balancer in front of the front end: the rightmost address not a trusted proxy.
    chained = {"X-Forwarded-For": f"203.0.113.10, {web_front_end}", **bearer(platform)}
    assert client.get("/api/v1/me", headers=chained, environ_base=proxy).status_code == 429


def test_a_forged_forwarded_for_from_an_untrusted_caller_is_ignored(platform):
    client = create_app(gateway_settings(platform, rate_limit_per_address="4/minute",
                                         trusted_proxies=("10.77.0.1",))).test_client()
    caller = {"REMOTE_ADDR": f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    codes = [client.get("/api/v1/me", environ_base=caller, headers={
        "Authorization": "Bearer forged", "X-Forwarded-For": f"203.0.113.{attempt}"}).status_code
        for attempt in range(6)]
    assert codes == [401] * 4 + [429] * 2  # a new address each time, counted as the caller


def test_a_trusted_proxy_list_that_is_not_addresses_stops_the_start(platform):
    with pytest.raises(SettingsError, match="GATEWAY_TRUSTED_PROXIES"):
        create_app(gateway_settings(platform, trusted_proxies=("web-front-end",)))
