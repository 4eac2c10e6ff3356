"""The pages can be reached without signing in: these tests attack them as a stranger would and
check the web front end's Redis directly — a big or forged POST stores nothing, anonymous pages
create no session, a kept form is small, short-lived and only a signed-in session's, bursts
get 429 — and that one person hammering the pages cannot use up the gateway's per-address
limit for everyone else signed in there."""
from __future__ import annotations

import dataclasses
import re
import threading
import uuid

import pytest
import redis
import requests
from flask import session
from flask_wtf.csrf import generate_csrf
from web.app import create_app as create_web
from web.config import WebSettings
from werkzeug.serving import make_server

from gateway.app import create_app as create_gateway
from tests.support.platform import free_port
from tests.test_gateway_routing import gateway_settings
from tests.web.sessions import (
    SESSION_PREFIX,
    read_session,
    session_keys,
    signed_in_session,
    web_redis,
    write_session,
)

pytestmark = pytest.mark.platform

NEW_PARTICIPANT = "/teilnehmende/neu"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_settings(platform, **changes) -> WebSettings:
    """The platform's web front end's settings, some changed, for an in-process front end."""
    base = WebSettings(
        public_url=platform.web_url, gateway_url=platform.gateway_url,
        oidc_server_url=platform.idp_url, oidc_public_url=platform.idp_url, realm="buendnis",
        client_id="buendnis-web", redis_url=platform.web_redis_url,
        secret_key="test-web-secret-key-of-at-least-32-characters",
        session_hours=10, pending_form_minutes=15, http_timeout_seconds=10,
        rate_limit_per_user="100000/minute", rate_limit_per_address="100000/minute",
        rate_limit_sign_in="100000/minute",
    )
    return dataclasses.replace(base, **changes)


def an_address() -> str:
    number = uuid.uuid4().int
    return f"10.{number % 250}.{(number >> 8) % 250}.{(number >> 16) % 250 + 1}"


def used_memory(platform) -> int:
    return web_redis(platform).info("memory")["used_memory"]


def assert_no_session_stored(platform, before: set[bytes], response) -> None:
    assert "buendnis_session" not in response.headers.get("Set-Cookie", "")
    assert session_keys(platform) - before == set()


# -- nothing stored for strangers ---------------------------------------------------------------

def test_a_big_anonymous_post_is_refused_and_stores_nothing(platform):
    before, memory = session_keys(platform), used_memory(platform)
    # About 12 MB in fields of 400 kB (each under the form parser's per-field limit).
    fields = {f"note{i}": (None, "x" * 400_000) for i in range(30)}
    big = requests.post(platform.web_url + NEW_PARTICIPANT, files=fields, timeout=60,
                        allow_redirects=False)
    assert big.status_code == 413
    assert "zu groß" in big.text
    assert_no_session_stored(platform, before, big)
    # Under the body limit, but without a CSRF token: refused before anything is kept.
    fields = {f"note{i}": (None, "x" * 300_000) for i in range(3)}
    forged = requests.post(platform.web_url + NEW_PARTICIPANT, files=fields, timeout=60,
                           allow_redirects=False)
    assert forged.status_code == 400
    assert "Formular war veraltet" in forged.text
    assert_no_session_stored(platform, before, forged)
    assert used_memory(platform) - memory < 200_000  # nothing near the 0.9 MB sent


def test_anonymous_pages_create_no_session(platform):
    before = session_keys(platform)
    for path in ("/", "/teilnehmende/", "/gibt-es-nicht", "/abgemeldet", "/healthz"):
        response = requests.get(platform.web_url + path, timeout=10, allow_redirects=False)
        assert response.status_code in (200, 302, 404), (path, response.status_code)
        assert_no_session_stored(platform, before, response)
    # Signing in needs one (the login's state), and it lives minutes, not the session's hours.
    login = requests.get(platform.web_url + "/anmelden", timeout=10, allow_redirects=False)
    assert login.status_code == 302
    (created,) = session_keys(platform) - before
    assert 0 < web_redis(platform).ttl(created) <= 15 * 60


def test_the_page_language_needs_a_session_only_when_chosen_and_a_csrf_token_once_signed_in(
        platform):
    before = session_keys(platform)
    chosen = requests.post(platform.web_url + "/sprache", data={"lang": "en", "next": "/x"},
                           timeout=10, allow_redirects=False)
    assert chosen.status_code == 302 and chosen.headers["Location"].endswith("/x")
    (created,) = session_keys(platform) - before
    assert 0 < web_redis(platform).ttl(created) <= 15 * 60
    # Signed in, the language form is CSRF-checked like every other form.
    sid = signed_in_session(platform, "cw.jmd-leverkusen")
    forged = requests.post(platform.web_url + "/sprache", data={"lang": "en"}, timeout=10,
                           cookies={"buendnis_session": sid}, allow_redirects=False)
    assert forged.status_code == 400
    assert "lang" not in read_session(platform, sid)


def test_sessions_live_in_a_bounded_redis_apart_from_the_broker(platform):
    """As `make run` starts them: the sessions' Redis drops old keys when full, the broker
    never drops any (a dropped queue entry would be a lost event)."""
    sessions = web_redis(platform).config_get("maxmemory*")
    assert sessions["maxmemory-policy"] == "allkeys-lru" and int(sessions["maxmemory"]) > 0
    broker = redis.Redis.from_url(platform.redis_url)
    assert broker.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert broker.connection_pool.connection_kwargs["port"] != (
        web_redis(platform).connection_pool.connection_kwargs["port"])
    assert not list(broker.scan_iter(f"{SESSION_PREFIX}*"))


# -- the kept form ------------------------------------------------------------------------------

def _end_tokens(platform, sid: str) -> None:
    data = read_session(platform, sid)
    data["token"]["expires_at"] = 1_000_000_000
    data["token"]["refresh_token"] = "no-longer-valid"
    write_session(platform, sid, data)


def _form_page(platform, sid: str) -> str:
    page = requests.get(platform.web_url + NEW_PARTICIPANT, timeout=20,
                        cookies={"buendnis_session": sid}, allow_redirects=False)
    assert page.status_code == 200
    return CSRF_FIELD.search(page.text).group(1)


def test_a_signed_in_sessions_form_is_kept_small_and_briefly_and_only_with_its_csrf_token(
        platform):
    sid = signed_in_session(platform, "cw.jmd-leverkusen")
    csrf = _form_page(platform, sid)
    _end_tokens(platform, sid)
    cookies = {"buendnis_session": sid}
    url = platform.web_url + NEW_PARTICIPANT

    # Without the session's CSRF token: refused, nothing kept.
    forged = requests.post(url, data={"given_name": "Yasmin"}, cookies=cookies, timeout=20,
                           allow_redirects=False)
    assert forged.status_code == 400
    assert "pending_form" not in read_session(platform, sid)

    # Too big to keep (over WEB_PENDING_FORM_MAX_BYTES): sent on to sign in, not kept.
    big = requests.post(url, data={"csrf_token": csrf, "given_name": "Y" * 100_000},
                        cookies=cookies, timeout=20, allow_redirects=False)
    assert big.status_code == 302 and "/anmelden" in big.headers["Location"]
    assert "pending_form" not in read_session(platform, sid)

    # A small form of a session that was signed in, with its token: kept, for minutes.
    small = requests.post(url, data={"csrf_token": csrf, "given_name": "Yasmin"},
                          cookies=cookies, timeout=20, allow_redirects=False)
    assert small.status_code == 302 and "/anmelden" in small.headers["Location"]
    kept = read_session(platform, sid)
    assert kept["pending_form"]["form"] == {"given_name": ["Yasmin"]}
    assert "token" not in kept
    assert 0 < web_redis(platform).ttl(f"{SESSION_PREFIX}{sid}") <= 15 * 60


def test_a_session_that_was_never_signed_in_keeps_no_form(platform):
    """Even with a valid CSRF token of its own (the session the login page makes)."""
    app = create_web(web_settings(platform))
    client = app.test_client()
    client.get("/anmelden")
    sid = client.get_cookie("buendnis_session").value
    with app.test_request_context():
        token = generate_csrf()
        raw = session["csrf_token"]
    data = read_session(platform, sid)
    data["csrf_token"] = raw
    write_session(platform, sid, data)
    response = client.post(NEW_PARTICIPANT, data={"csrf_token": token, "given_name": "Yasmin"})
    assert response.status_code == 302 and "/anmelden" in response.headers["Location"]
    assert "pending_form" not in read_session(platform, sid)


# -- rate limits --------------------------------------------------------------------------------

def test_a_burst_from_one_address_gets_429_with_a_page_saying_how_long_to_wait(platform):
    client = create_web(web_settings(platform, rate_limit_per_address="5/minute")).test_client()
    address = {"REMOTE_ADDR": an_address()}
    before = session_keys(platform)
    codes = [client.get("/abgemeldet", environ_base=address).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    limited = client.get("/abgemeldet", environ_base=address)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    text = limited.get_data(as_text=True)
    assert "Zu viele Anfragen" in text and "Sekunden" in text
    assert_no_session_stored(platform, before, limited)
    # Another address is not limited by the first one's burst; health checks never are.
    assert client.get("/abgemeldet", environ_base={"REMOTE_ADDR": an_address()}
                      ).status_code == 200
    assert client.get("/healthz", environ_base=address).status_code == 200


def test_a_forged_forwarded_for_does_not_escape_the_pages_address_limit(platform):
    client = create_web(web_settings(platform, rate_limit_per_address="3/minute")).test_client()
    address = {"REMOTE_ADDR": an_address()}
    codes = [client.get("/abgemeldet", environ_base=address,
                        headers={"X-Forwarded-For": an_address()}).status_code for _ in range(5)]
    assert codes == [200] * 3 + [429] * 2
    # Behind one reverse proxy (WEB_PROXY_COUNT=1) the address it adds is the browser's.
    behind = create_web(web_settings(platform, rate_limit_per_address="3/minute",
                                     proxy_count=1)).test_client()
    proxy = {"REMOTE_ADDR": an_address()}
    codes = [behind.get("/abgemeldet", environ_base=proxy,
                        headers={"X-Forwarded-For": an_address()}).status_code for _ in range(5)]
    assert codes == [200] * 5


def test_a_signed_in_user_is_limited_from_whatever_address(platform):
    client = create_web(web_settings(platform, rate_limit_per_user="4/minute")).test_client()
    client.set_cookie("buendnis_session", signed_in_session(platform, "cw.awo-leverkusen"))
    codes = [client.get("/abgemeldet", environ_base={"REMOTE_ADDR": an_address()}).status_code
             for _ in range(6)]
    assert codes[:4] == [302] * 4 and codes[4:] == [429, 429]  # signed in: on to the start page
    other = create_web(web_settings(platform, rate_limit_per_user="4/minute")).test_client()
    other.set_cookie("buendnis_session", signed_in_session(platform, "cw.jmd-neuss"))
    assert other.get("/abgemeldet").status_code == 302


def test_starting_sign_ins_is_limited_per_address(platform):
    client = create_web(web_settings(platform, rate_limit_sign_in="3/minute")).test_client()
    address = {"REMOTE_ADDR": an_address()}
    before = session_keys(platform)
    codes = []
    for _ in range(6):
        client.delete_cookie("buendnis_session")
        codes.append(client.get("/anmelden", environ_base=address).status_code)
    assert codes == [302] * 3 + [429] * 3
    assert len(session_keys(platform) - before) == 3  # no session for a refused one


# -- one address for all users at the gateway ---------------------------------------------------

@pytest.fixture
def serve_gateway(platform):
    """A gateway of its own, over HTTP (the front end calls it so), with the settings given."""
    servers = []

    def serve(**changes) -> str:
        app = create_gateway(gateway_settings(platform, **changes))
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()


def _hammer_until_limited(client, address: dict) -> int:
    for attempt in range(1, 40):
        if client.get("/teilnehmende/", environ_base=address).status_code == 429:
            return attempt
    raise AssertionError("the gateway's per-address limit was never reached")


@pytest.mark.parametrize("trusted", [True, False], ids=["web-trusted", "web-not-trusted"])
def test_one_user_hammering_the_pages_does_not_starve_the_others(platform, serve_gateway,
                                                                   trusted):
    gateway_url = serve_gateway(rate_limit_per_address="8/minute",
                                trusted_proxies=("127.0.0.1",) if trusted else ())
    settings = web_settings(platform, gateway_url=gateway_url)
    hammering = create_web(settings).test_client()
    hammering.set_cookie("buendnis_session", signed_in_session(platform, "cw.jmd-leverkusen"))
    _hammer_until_limited(hammering, {"REMOTE_ADDR": an_address()})
    other = create_web(settings).test_client()
    other.set_cookie("buendnis_session", signed_in_session(platform, "cw.awo-leverkusen"))
    page = other.get("/teilnehmende/", environ_base={"REMOTE_ADDR": an_address()})
    if trusted:
        assert page.status_code == 200  # the browser's address counts at the gateway
    else:
        # Without trusting the front end, all its users share its one address: starved.
        assert page.status_code == 429
        assert "Zu viele Anfragen" in page.get_data(as_text=True)
