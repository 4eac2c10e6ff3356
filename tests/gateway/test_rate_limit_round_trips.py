"""The gateway's rate limits cost one Redis round trip per request, however many limits a
request counts against (issue 14: the gateway's added time on ``GET /api/v1/me``)."""
from __future__ import annotations

import uuid

import pytest

from gateway.app import create_app
from tests.test_gateway_routing import gateway_settings

pytestmark = pytest.mark.platform


def counted(app) -> list[str]:
    """The commands the app's rate limits send to Redis, from now on (after a first request,
    which may load the script into Redis)."""
    app.test_client().get("/api/v1/me", environ_base={"REMOTE_ADDR": "10.7.7.7"})
    sent: list[str] = []
    client = app.extensions["gateway"]["limits"].redis
    original = client.execute_command

    def execute_command(*args, **kwargs):
        sent.append(str(args[0]))
        return original(*args, **kwargs)

    client.execute_command = execute_command
    return sent


def test_a_signed_in_request_is_counted_per_address_and_per_user_in_one_round_trip(platform):
    app = create_app(gateway_settings(platform, rate_limit_per_user="3/minute"))
    client = app.test_client()
    sent = counted(app)
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-neuss')}"}
    address = {"REMOTE_ADDR": f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    codes = [client.get("/api/v1/me", headers=headers, environ_base=address).status_code
             for _ in range(4)]
    # Both limits counted: the per-user one holds (3/minute), the address one is far off.
    assert codes == [200, 200, 200, 429]
    assert len(sent) == 4, sent  # one round trip per request, not one per limit
    assert all(command in ("EVALSHA", "EVAL") for command in sent), sent


def test_a_refused_token_and_the_open_directory_take_one_round_trip_too(platform):
    app = create_app(gateway_settings(platform, rate_limit_hsds_per_address="2/minute"))
    client = app.test_client()
    sent = counted(app)
    address = {"REMOTE_ADDR": f"10.8.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer forged"},
                      environ_base=address).status_code == 401
    assert len(sent) == 1
    codes = [client.get("/hsds/services", environ_base=address).status_code for _ in range(3)]
    assert codes[2] == 429  # the directory's own limit, counted with the address limit
    assert len(sent) == 4
