"""The gateway routes to the owning service and never hangs on one that is down or slow."""
from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from gateway.app import create_app
from gateway.config import GatewaySettings
from tests.support.platform import free_port
from tests.test_token_verifier import settings_for

pytestmark = pytest.mark.platform


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: a hung service."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    listener.close()


def gateway_settings(platform, **changes) -> GatewaySettings:
    """The settings of the platform's gateway, with some changed, for an in-process gateway."""
    defaults = GatewaySettings(
        oidc=settings_for(platform), redis_url=platform.redis_url,
        database_url=platform.database_urls["gateway"],
        service_urls=dict(platform.service_urls), connect_timeout=1.0, read_timeout=1.0,
        rate_limit_per_user="600/minute", rate_limit_per_address="1200/minute",
        max_body_bytes=10 * 1024 * 1024, cors_origins=[],
    )
    return dataclasses.replace(defaults, **changes)


def gateway_client(platform, **service_urls):
    redis_url = service_urls.pop("redis", platform.redis_url)
    settings = gateway_settings(platform, redis_url=redis_url,
                                service_urls={**platform.service_urls, **service_urls})
    return create_app(settings).test_client()


def test_a_service_that_is_down_gives_502_with_the_error_body(platform):
    client = gateway_client(platform, intake=f"http://127.0.0.1:{free_port()}")
    token = platform.token("cw.jmd-leverkusen")
    response = client.get("/api/v1/participants", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 502
    assert response.json == {
        "code": 502, "status": "Bad Gateway", "message": "The intake service is not reachable.",
        "error_code": "gateway.service_unreachable", "params": {"service": "intake"},
    }


def test_a_service_that_hangs_gives_504_within_the_timeout(platform, silent_server):
    client = gateway_client(platform, intake=silent_server)
    token = platform.token("cw.jmd-leverkusen")
    started = time.monotonic()
    response = client.get("/api/v1/participants", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 504
    assert response.json["message"] == "The intake service did not answer in time."
    assert time.monotonic() - started < 5


def test_readyz_reports_every_service_and_redis(platform):
    response = requests.get(f"{platform.gateway_url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"intake": "ok", "referrals": "ok", "notifications": "ok", "redis": "ok"},
    }


def test_readyz_names_what_is_missing(platform):
    client = gateway_client(
        platform, referrals=f"http://127.0.0.1:{free_port()}",
        redis=f"redis://127.0.0.1:{free_port()}/0",
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {
        "intake": "ok", "referrals": "unreachable", "notifications": "ok", "redis": "unreachable",
    }


def test_unknown_paths_and_methods_answer_with_the_error_body(platform):
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"}
    missing = requests.get(f"{platform.gateway_url}/api/v1/nothing-here", headers=headers,
                           timeout=10)
    assert missing.status_code == 404
    assert missing.json()["status"] == "Not Found"
    wrong_method = requests.put(f"{platform.gateway_url}/api/v1/participants", headers=headers,
                                timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == 405


def test_the_request_id_reaches_the_service_and_its_audit_entry(platform):
    client = platform.as_user("cw.jmd-leverkusen")
    response = client.post(
        "/api/v1/participants",
        json={"given_name": "Lina", "family_name": "Saleh", "birth_date": "2005-02-01",
              "residence_status": "duldung"},
        headers={"X-Request-ID": "trace-me-42"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == "trace-me-42"
    engine = create_engine(platform.database_urls["intake"])
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT actor, actor_org, action, request_id FROM audit_log "
                 "WHERE request_id = 'trace-me-42'")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("cw.jmd-leverkusen", "jmd-leverkusen", "participant.create", "trace-me-42")
    ]
