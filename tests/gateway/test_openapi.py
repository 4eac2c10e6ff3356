"""One API document for the whole platform, and its documentation page, served offline."""
from __future__ import annotations

import pytest
import requests

from gateway.openapi import merge

pytestmark = pytest.mark.platform


def test_the_merged_document_names_every_operation_with_its_roles(platform):
    response = requests.get(f"{platform.gateway_url}/api/openapi.json", timeout=30)
    assert response.status_code == 200  # public: no token needed to read the contract
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = document["paths"]
    for path in ("/api/v1/me", "/api/v1/participants", "/api/v1/participants/{participant_id}",
                 "/api/v1/referrals", "/api/v1/offers", "/api/v1/audit"):
        assert path in paths, path
    assert not [p for p in paths if p.startswith("/internal")]  # services' internal endpoints
    assert paths["/api/v1/participants"]["post"]["x-roles"] == ["case_worker"]
    assert paths["/api/v1/audit"]["get"]["x-roles"] == ["auditor"]
    assert "Roles: case_worker." in paths["/api/v1/participants"]["post"]["description"]


def test_components_of_the_same_name_but_another_shape_are_kept_apart():
    intake = {"paths": {"/a": {"get": {"responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Participant"}}}}}}}},
        "components": {"schemas": {"Participant": {"properties": {"given_name": {}}}}}}
    referrals = {"paths": {"/b": {"get": {"responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Participant"}}}}}}}},
        "components": {"schemas": {"Participant": {"properties": {"pseudonym": {}}}}}}
    merged = merge({"intake": intake, "referrals": referrals})
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Participant", "referrals.Participant"}
    ref = merged["paths"]["/b"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ref["schema"]["$ref"] == "#/components/schemas/referrals.Participant"


def test_the_documentation_page_is_served_without_any_cdn(platform):
    page = requests.get(f"{platform.gateway_url}/api/docs/", timeout=10)
    assert page.status_code == 200
    assert "/api/docs/swagger-ui-bundle.js" in page.text
    assert "/api/openapi.json" in page.text
    assert "https://" not in page.text and "http://" not in page.text.replace(
        "http://127.0.0.1", "")
    script = requests.get(f"{platform.gateway_url}/api/docs/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200 and len(script.content) > 100_000
