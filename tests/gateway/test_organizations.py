"""Whom a user can address: the organisations of their alliance, or every one for the
ministry, from the realm file that Keycloak imports."""
from __future__ import annotations

import json

import pytest
import requests

from tests.support.platform import REPO
from tests.test_gateway_identity import DEMO_USERS

pytestmark = pytest.mark.platform


def realm_organizations(alliance: str | None = None) -> list[dict]:
    """The realm file's organisations (of one alliance), sorted by name."""
    realm = json.loads((REPO / "infra/keycloak/buendnis-realm.json").read_text(encoding="utf-8"))
    found = []
    for entry in realm["organizations"]:
        attributes = entry.get("attributes") or {}
        org = {"alias": entry["alias"], "name": entry["name"],
               "type": (attributes.get("type") or [None])[0],
               "alliance": (attributes.get("alliance") or [None])[0]}
        if alliance is None or org["alliance"] == alliance:
            found.append(org)
    return sorted(found, key=lambda org: org["name"].casefold())


@pytest.mark.parametrize("username", sorted(u for u, (_, _, alliance, _) in DEMO_USERS.items()
                                            if alliance == "leverkusen"))
def test_a_leverkusen_member_sees_exactly_the_leverkusen_organisations(platform, username):
    response = platform.as_user(username).get("/api/v1/organizations")
    assert response.status_code == 200, response.text
    expected = realm_organizations("leverkusen")
    assert response.json() == expected
    assert len(expected) == 5
    assert DEMO_USERS[username][0] in [org["alias"] for org in expected]  # its own, too


def test_a_member_of_another_alliance_sees_only_that_alliance(platform):
    listed = platform.as_user("cw.stadt-meerbusch").get("/api/v1/organizations").json()
    assert listed == realm_organizations("rhein-kreis-neuss")
    assert "caritas-leverkusen" not in [org["alias"] for org in listed]


def test_the_ministry_sees_every_organisation_by_name(platform):
    response = platform.as_user("ministry.analyst").get("/api/v1/organizations")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed == realm_organizations()
    assert {org["alliance"] for org in listed} == {None, "leverkusen", "rhein-kreis-neuss"}
    names = [org["name"] for org in listed]
    assert names == sorted(names, key=str.casefold)


def test_without_a_token_the_answer_is_401(platform):
    response = requests.get(f"{platform.gateway_url}/api/v1/organizations", timeout=10)
    assert response.status_code == 401
    assert response.json()["status"] == "Unauthorized"


def test_the_list_is_in_the_api_document_for_every_role(platform):
    document = requests.get(f"{platform.gateway_url}/api/openapi.json", timeout=30).json()
    operation = document["paths"]["/api/v1/organizations"]["get"]
    assert operation["x-roles"] == ["auditor", "case_worker", "coordinator", "core_group",
                                    "ministry"]
    listed = document["paths"]["/api/v1/appointments"]["get"]
    assert listed["x-roles"] == ["case_worker"]
    assert {p["name"] for p in listed["parameters"]} >= {"from", "to", "status", "page",
                                                         "page_size"}
