"""The role policy, applied by the gateway before anything reaches a service."""
from __future__ import annotations

import pytest
import requests

from buendnis_common import policy
from buendnis_common.auth import Principal

pytestmark = pytest.mark.platform


def principal(*roles: str) -> Principal:
    return Principal(subject="s", username="u", client_id="c", roles=frozenset(roles),
                     org_alias="jmd-leverkusen", alliance="leverkusen")


@pytest.mark.parametrize(
    ("username", "method", "path", "needed"),
    [
        ("ministry.analyst", "GET", "/api/v1/participants", "case_worker"),
        ("coord.leverkusen", "POST", "/api/v1/participants", "case_worker"),
        ("audit.jmd-leverkusen", "GET", "/api/v1/participants/00000000-0000-0000-0000-000000000001",
         "case_worker"),
        ("cw.jmd-leverkusen", "GET", "/api/v1/reports/referrals",
         "coordinator or core_group or ministry"),
        ("cw.jmd-leverkusen", "GET", "/api/v1/audit", "auditor"),
        ("ministry.analyst", "GET", "/api/v1/offers", "case_worker or coordinator or core_group"),
    ],
)
def test_a_request_outside_the_policy_is_403_naming_the_missing_role(platform, username, method,
                                                                     path, needed):
    response = requests.request(
        method, platform.gateway_url + path, timeout=10,
        headers={"Authorization": f"Bearer {platform.token(username)}"}, json={})
    assert response.status_code == 403, response.text
    assert f"This needs the role {needed}" in response.json()["message"]


def test_an_allowed_request_is_forwarded(platform):
    response = requests.get(
        platform.gateway_url + "/api/v1/participants", timeout=10,
        headers={"Authorization": f"Bearer {platform.token('cw.awo-leverkusen')}"})
    assert response.status_code == 200


def test_routes_outside_the_table_are_unreachable():
    assert policy.decide(principal("case_worker"), "/api/v1/secret", "GET").status == 404
    assert policy.decide(principal("case_worker"), "/api/v1/participants", "PUT").status == 405
    allowed = policy.decide(principal("case_worker"), "/api/v1/participants/abc/needs", "POST")
    assert allowed.allowed and allowed.route == "/api/v1/participants/<participant_id>/needs"


def test_every_route_the_gateway_forwards_belongs_to_a_service():
    from gateway.routes import owner

    for path, _methods in policy.POLICY:
        if path in ("/api/v1/me", "/api/v1/organizations", "/api/v1/audit"):
            continue
        concrete = path.replace("<", "").replace(">", "")
        assert owner(concrete) is not None, path


def test_documented_paths_find_their_roles_whatever_the_parameter_names():
    assert policy.roles_for("/api/v1/notifications/<entry_id>/read", "POST") == policy.EVERYONE
    assert policy.roles_for("/api/v1/participants/<pid>", "DELETE") == policy.CASE_WORK
    assert policy.roles_for("/api/v1/participants/<pid>", "PUT") is None
