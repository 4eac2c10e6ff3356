"""Errors in the caller's language, with their codes (API.md, "Errors with codes"): a 422 with
``Accept-Language: de`` carries a German message and its code, straight at a service and through
the gateway; field errors are ``{"code", "message", "params"}``; a language the catalogue does
not have, or none, answers in English."""
from __future__ import annotations

import uuid
from datetime import date

import pytest
import requests

TOO_OLD = {"given_name": "Amira", "family_name": "Yousef",
           "birth_date": date(date.today().year - 30, 1, 15).isoformat(),
           "residence_status": "duldung", "contact": {"phone": "not a number"}}


@pytest.fixture
def jmd(world):
    return world.as_user("cw.jmd-leverkusen")


def _age_error(body: dict) -> dict:
    (error,) = body["errors"]["birth_date"]
    return error


def test_a_422_with_accept_language_de_is_german_and_carries_its_codes(jmd):
    response = jmd.post("/api/v1/participants", json=TOO_OLD, headers={"Accept-Language": "de"})
    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "request.invalid_fields"
    assert body["message"] == "Einige Angaben fehlen oder sind ungültig."
    age = _age_error(body)
    assert age["code"] == "participant.age_out_of_range"
    assert age["params"] == {"min": 18, "max": 27, "age": 30}
    assert "18 bis 27 Jahre" in age["message"]
    (phone,) = body["errors"]["contact"]["phone"]
    assert phone["code"] == "participant.phone_format"
    assert phone["message"].startswith("Keine Telefonnummer im internationalen Format E.164")


def test_without_accept_language_the_same_error_is_english(jmd):
    body = jmd.post("/api/v1/participants", json=TOO_OLD).json()
    assert body["message"] == "Some fields are missing or invalid."
    assert _age_error(body)["message"].startswith("The programme is for people aged 18 to 27")


@pytest.mark.parametrize("header", ["fr", "tlh", "ar;q=0.9, fa;q=0.8", "*;q=0"])
def test_a_language_the_catalogue_lacks_answers_in_english(jmd, header):
    body = jmd.post("/api/v1/participants", json=TOO_OLD,
                    headers={"Accept-Language": header}).json()
    assert _age_error(body)["code"] == "participant.age_out_of_range"
    assert _age_error(body)["message"].startswith("The programme is for people aged")


def test_the_preferred_language_wins_by_its_weight(jmd):
    body = jmd.post("/api/v1/participants", json=TOO_OLD,
                    headers={"Accept-Language": "fr-FR, de-DE;q=0.8, en;q=0.5"}).json()
    assert body["message"] == "Einige Angaben fehlen oder sind ungültig."


def test_marshmallow_s_own_field_errors_have_codes_and_german_texts(jmd):
    response = jmd.post("/api/v1/participants", headers={"Accept-Language": "de"}, json={
        "given_name": "", "birth_date": "kein Datum", "residence_status": "mars",
        "languages": ["ar"] * 21, "unexpected": 1})
    errors = response.json()["errors"]
    assert errors["family_name"] == [{"code": "field.required", "message": "Diese Angabe fehlt.",
                                      "params": {}}]
    assert errors["given_name"][0]["code"] == "field.length.between"
    assert errors["given_name"][0]["params"] == {"min": 1, "max": 200}
    assert errors["given_name"][0]["message"] == "Bitte zwischen 1 und 200 Zeichen eingeben."
    assert errors["birth_date"][0] == {"code": "field.date.invalid",
                                       "message": "Kein gültiges Datum.", "params": {}}
    assert errors["residence_status"][0]["code"] == "field.one_of"
    assert errors["residence_status"][0]["message"].startswith("Bitte einen dieser Werte wählen:")
    assert errors["languages"][0]["code"] == "field.items.max"
    assert errors["unexpected"][0]["code"] == "schema.unknown_field"
    # the caller's own input never comes back in params
    assert all("input" not in error["params"]
               for field in errors.values() if isinstance(field, list) for error in field)


def test_a_domain_error_is_german_with_its_code_and_params(jmd):
    response = jmd.get(f"/api/v1/participants/{uuid.uuid4()}", headers={"Accept-Language": "de"})
    assert response.status_code == 404
    assert response.json()["error_code"] == "participant.not_found"
    assert response.json()["message"] == "Diese Person gibt es nicht."


def test_straight_at_the_service_past_the_gateway_too(world):
    intake = world.at_service("intake", world.token("cw.jmd-leverkusen"))
    response = intake.post("/api/v1/participants", json=TOO_OLD,
                           headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert response.status_code == 422
    assert response.json()["message"] == "Einige Angaben fehlen oder sind ungültig."
    assert _age_error(response.json())["code"] == "participant.age_out_of_range"


def test_through_the_gateway_a_422_is_german_and_the_gateway_s_own_errors_too(platform):
    jmd = platform.as_user("cw.jmd-leverkusen")
    german = {"Accept-Language": "de"}
    refused = jmd.post("/api/v1/participants", json=TOO_OLD, headers=german)
    assert refused.status_code == 422
    assert refused.json()["message"] == "Einige Angaben fehlen oder sind ungültig."
    assert _age_error(refused.json())["code"] == "participant.age_out_of_range"
    assert "18 bis 27 Jahre" in _age_error(refused.json())["message"]
    # the gateway's own refusal (the role policy), in German and in English
    ministry = {"Authorization": f"Bearer {platform.token('ministry.analyst')}"}
    url = platform.gateway_url + "/api/v1/participants"
    role = requests.get(url, headers={**ministry, **german}, timeout=10)
    assert role.status_code == 403
    assert role.json()["error_code"] == "policy.role_required"
    assert role.json()["params"] == {"needed": ["case_worker"], "yours": ["ministry"]}
    assert role.json()["message"] == ("Dafür braucht es eine dieser Rollen: case_worker. "
                                      "Ihre Rollen: ministry.")
    english = requests.get(url, headers=ministry, timeout=10).json()
    assert english["message"] == "This needs the role case_worker; your roles: ministry."
