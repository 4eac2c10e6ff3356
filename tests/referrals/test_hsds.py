"""The open offer directory: Open Referral HSDS 3.0 of the offers their provider marked public,
read from the gateway without a token. Every object is validated against HSDS's own schemas
(infra/hsds/schema); an offer not marked public never appears, whatever the query."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker

from gateway.app import create_app as create_gateway
from referrals.hsds.views import organization_id
from tests.referrals.test_offers import add
from tests.test_gateway_routing import gateway_settings

pytestmark = pytest.mark.platform

SCHEMAS = Path(__file__).resolve().parents[2] / "infra/hsds/schema"
PAGE_FIELDS = ("total_items", "total_pages", "page_number", "size", "first_page", "last_page",
               "empty", "contents")


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def valid(name: str, instance: dict) -> dict:
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    return instance


def hsds(platform, path: str, **params) -> requests.Response:
    """An anonymous reader: no token at all."""
    return requests.get(f"{platform.gateway_url}/hsds{path}", params=params, timeout=10)


def page(platform, path: str, **params) -> dict:
    response = hsds(platform, path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(PAGE_FIELDS) <= set(body), body
    return body


def marker() -> str:
    return f"hsds{uuid.uuid4().hex[:10]}"


def test_the_root_names_hsds_3(platform):
    response = hsds(platform, "/")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "3.0"
    assert body["profile"] and body["openapi_url"]


def test_a_public_offer_is_listed_and_readable_without_a_token_and_validates(platform, caritas):
    mark = marker()
    offer = add(caritas, title=f"Sprachcafé {mark}", public=True, languages=["de", "ar"],
                schedule="Di 17-19 Uhr", mode="in_person", min_age=16, max_age=27,
                eligible_residence_statuses=["duldung"])
    assert offer["public"] is True
    listed = page(platform, "/services", search=mark)
    assert [item["id"] for item in listed["contents"]] == [offer["id"]]
    for item in listed["contents"]:
        valid("service_list", item)
    detail = hsds(platform, f"/services/{offer['id']}")
    assert detail.status_code == 200
    service = valid("service", detail.json())
    assert service["name"] == f"Sprachcafé {mark}"
    assert service["status"] == "active"
    assert service["minimum_age"] == 16 and service["maximum_age"] == 27
    assert sorted(lang["code"] for lang in service["languages"]) == ["ar", "de"]
    assert service["schedules"][0]["description"] == "Di 17-19 Uhr"
    assert service["service_areas"][0]["name"] == "Leverkusen"
    assert {a["value"] for a in service["attributes"]} == {"language_course", "in_person"}
    assert service["organization"]["name"]
    # The organisation, in the list and in full, with its public services.
    org_id = service["organization_id"]
    organizations = page(platform, "/organizations", per_page=100)
    assert org_id in [item["id"] for item in organizations["contents"]]
    for item in organizations["contents"]:
        valid("organization_list", item)
    organization = hsds(platform, f"/organizations/{org_id}")
    assert organization.status_code == 200
    valid("organization", organization.json())
    assert offer["id"] in [s["id"] for s in organization.json()["services"]]
    # A token is not needed, and a wrong one changes nothing.
    forged = requests.get(f"{platform.gateway_url}/hsds/services/{offer['id']}",
                          headers={"Authorization": "Bearer forged"}, timeout=10)
    assert forged.status_code == 200


def test_an_offer_not_marked_public_never_appears(platform, caritas, awo):
    mark = marker()
    hidden = add(caritas, title=f"Intern {mark}", description=f"nur intern {mark}")
    assert hidden["public"] is False  # the default
    assert page(platform, "/services", search=mark)["total_items"] == 0
    everything = page(platform, "/services", per_page=100)
    for number in range(1, everything["total_pages"] + 1):
        listed = page(platform, "/services", per_page=100, page=number)
        assert hidden["id"] not in [item["id"] for item in listed["contents"]]
    assert hsds(platform, f"/services/{hidden['id']}").status_code == 404
    assert hsds(platform, f"/services/{uuid.uuid4()}").status_code == 404
    assert hsds(platform, "/services/not-a-uuid").status_code == 404

    # An organisation with no public offer is not in the directory at all.
    only_private = add(awo, title=f"AWO intern {mark}")
    assert only_private["public"] is False
    awo_id = organization_id("awo-leverkusen")
    organizations = page(platform, "/organizations", per_page=100)["contents"]
    assert awo_id not in [item["id"] for item in organizations]
    assert hsds(platform, f"/organizations/{awo_id}").status_code == 404

    # Published, then withdrawn by its provider: gone again, also by id.
    shown = add(caritas, title=f"Bald intern {mark}", public=True)
    assert hsds(platform, f"/services/{shown['id']}").status_code == 200
    etag = caritas.get(f"/api/v1/offers/{shown['id']}").headers["ETag"]
    changed = caritas.patch(f"/api/v1/offers/{shown['id']}", json={"public": False},
                            headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.json()["public"] is False
    assert hsds(platform, f"/services/{shown['id']}").status_code == 404
    assert page(platform, "/services", search=mark)["total_items"] == 0


def test_only_the_provider_marks_an_offer_public(platform, caritas, awo):
    offer = add(caritas, title=f"Caritas {marker()}")
    etag = awo.get(f"/api/v1/offers/{offer['id']}").headers["ETag"]
    refused = awo.patch(f"/api/v1/offers/{offer['id']}", json={"public": True},
                        headers={"If-Match": etag})
    assert refused.status_code == 403
    assert hsds(platform, f"/services/{offer['id']}").status_code == 404


def test_an_unknown_organisation_answers_404(platform):
    assert hsds(platform, f"/organizations/{organization_id('no-such-org')}").status_code == 404
    assert hsds(platform, f"/organizations/{uuid.uuid4()}").status_code == 404


def test_paging_fields_follow_hsds(platform, caritas):
    mark = marker()
    ids = sorted(add(caritas, title=f"Kurs {mark} {n}", public=True)["id"] for n in "ABC")
    first = page(platform, "/services", search=mark, per_page=2)
    assert (first["total_items"], first["total_pages"], first["page_number"], first["size"],
            first["first_page"], first["last_page"], first["empty"]) == (3, 2, 1, 2, True,
                                                                        False, False)
    second = page(platform, "/services", search=mark, per_page=2, page=2)
    assert (second["page_number"], second["size"], second["first_page"], second["last_page"],
            second["empty"]) == (2, 1, False, True, False)
    assert sorted(item["id"] for item in first["contents"] + second["contents"]) == ids
    beyond = page(platform, "/services", search=mark, per_page=2, page=3)
    assert beyond["empty"] is True and beyond["contents"] == [] and beyond["size"] == 0
    none = page(platform, "/services", search=marker())
    assert (none["total_items"], none["total_pages"], none["empty"]) == (0, 0, True)
    for wrong in ({"per_page": 0}, {"per_page": 1000}, {"page": 0}, {"page": "x"}):
        assert hsds(platform, "/services", **wrong).status_code == 422, wrong


def test_filters_search_and_modified_after(platform, caritas):
    mark = marker()
    in_title = add(caritas, title=f"Bewerbungstraining {mark}", public=True)
    in_text = add(caritas, title="Werkstatt", description=f"Holz und {mark.upper()}",
                  public=True)
    found = {item["id"] for item in page(platform, "/services", search=mark)["contents"]}
    assert found == {in_title["id"], in_text["id"]}  # title or description, any case
    # A search with SQL's wildcards matches them literally.
    assert page(platform, "/services", search=f"{mark}%")["total_items"] == 0
    assert page(platform, "/services", search="_" * 30)["total_items"] == 0

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert page(platform, "/services", search=mark, modified_after=future)["total_items"] == 0
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert page(platform, "/services", search=mark, modified_after=past)["total_items"] == 2
    assert hsds(platform, "/services", modified_after="yesterday").status_code == 422
    org = page(platform, "/organizations", modified_after=past)["contents"]
    assert in_title["id"] in {
        s["id"] for o in org
        for s in hsds(platform, f"/organizations/{o['id']}").json()["services"]}
    assert page(platform, "/organizations", modified_after=future)["total_items"] == 0
    name = hsds(platform, f"/services/{in_title['id']}").json()["organization"]["name"]
    by_name = page(platform, "/organizations", search=name[:6].lower())["contents"]
    assert name in [o["name"] for o in by_name]


def test_no_personal_data_in_the_directory(platform, caritas):
    mark = marker()
    offer = add(caritas, title=f"Beratung {mark}", public=True,
                contact=f"Frau Beispiel, beispiel-{mark}@caritas-leverkusen.example, 0214 1234")
    texts = [hsds(platform, f"/services/{offer['id']}").text,
             hsds(platform, "/services", search=mark).text]
    org_id = hsds(platform, f"/services/{offer['id']}").json()["organization_id"]
    texts.append(hsds(platform, f"/organizations/{org_id}").text)
    for text in texts:
        assert "Beispiel" not in text and "0214" not in text and "@" not in text
        assert "cw.caritas-leverkusen" not in text  # who created it
        assert "capacity" not in text and "contact" not in text


def test_the_directory_has_its_own_limit_per_address(platform, caritas):
    client = create_gateway(gateway_settings(platform, rate_limit_hsds_per_address="3/minute")
                            ).test_client()
    address = {"REMOTE_ADDR": f"127.1.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    codes = [client.get("/hsds/services", environ_base=address).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert int(client.get("/hsds/", environ_base=address).headers["Retry-After"]) > 0
    # The API's own limit is counted apart: a signed-in user from that address goes on.
    token = {"Authorization": f"Bearer {platform.token('cw.caritas-leverkusen')}"}
    assert client.get("/api/v1/me", headers=token, environ_base=address).status_code == 200


def test_any_website_may_read_the_directory_in_the_browser_but_not_the_api(platform):
    client = create_gateway(gateway_settings(platform)).test_client()
    origin = {"Origin": "https://www.leverkusen.example"}
    listed = client.get("/hsds/services", headers=origin)
    assert listed.status_code == 200
    assert listed.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in listed.headers
    token = {"Authorization": f"Bearer {platform.token('cw.caritas-leverkusen')}"}
    api = client.get("/api/v1/me", headers={**origin, **token})
    assert api.status_code == 200
    assert "Access-Control-Allow-Origin" not in api.headers


def test_writing_to_the_directory_is_not_possible(platform):
    for method in ("post", "put", "patch", "delete"):
        response = getattr(requests, method)(f"{platform.gateway_url}/hsds/services",
                                             json={"name": "x"}, timeout=10)
        assert response.status_code in (401, 404, 405), (method, response.status_code)


class _NoTokenExpected:
    def principal(self, *_args, **_kwargs):
        raise AssertionError("a public route must not check a token")


def test_only_the_policys_public_routes_skip_the_token_at_a_service():
    from buendnis_common.web import create_flask_app

    app, _api = create_flask_app(__name__, title="t", verifier=_NoTokenExpected())

    @app.get("/hsds/services")
    def listed():
        return {"contents": []}

    @app.get("/hsds/secret")
    def secret():
        return {"secret": "x"}

    @app.post("/hsds/services")
    def write():
        return {"written": True}

    client = app.test_client()
    assert client.get("/hsds/services").status_code == 200
    assert client.get("/hsds/secret").status_code == 401  # not in PUBLIC_POLICY: a token
    assert client.post("/hsds/services").status_code == 401  # only GET is public
    assert client.get("/hsds/services/").status_code == 401  # exact paths only
