"""Every bad input gets a clear error that names the field."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.intake.conftest import adult_birth_date, person
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"given_name": ""}, "given_name"),
        ({"residence_status": "tourist"}, "residence_status"),
        ({"nationality": "XX"}, "nationality"),
        ({"nationality": "syr"}, "nationality"),
        ({"languages": ["arabic"]}, "languages"),
        ({"languages": ["ar", "ar"]}, "languages"),
        ({"contact": {"phone": "0176 1234567"}}, "contact"),
        ({"contact": {"phone": "+49123"}}, "contact"),
        ({"contact": {"email": "not-an-address"}}, "contact"),
        ({"contact": {"preferred_channel": "pigeon"}}, "contact"),
        ({"contact": {"preferred_channel": "email"}}, "contact"),  # no address to send to
        ({"contact": {"language": "xx"}}, "contact"),
        ({"needs": [{"category": "holiday"}]}, "needs"),
        ({"gender": "x"}, "gender"),
        ({"birth_date": "2031-13-01"}, "birth_date"),
        ({"birth_date": (date.today() + timedelta(days=3)).isoformat()}, "birth_date"),
        ({"birth_date": "1900-01-01", "eligibility_override_reason": "Sonderfall"},
         "birth_date"),
        ({"education": {"highest_qualification": "phd"}}, "education"),
        ({"shoe_size": 43}, "shoe_size"),
    ],
)
def test_invalid_fields_are_named_in_a_422(jmd, changes, field):
    response = jmd.post("/api/v1/participants", json=person(**changes))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert field in body["errors"], body


def test_required_fields_are_named(jmd):
    response = jmd.post("/api/v1/participants", json={})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"given_name", "family_name", "birth_date",
                                              "residence_status"}


def test_malformed_json_is_400(jmd):
    response = jmd.post("/api/v1/participants", data="{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == 400


def test_outside_the_age_range_needs_a_reason_which_is_kept_and_audited(platform, jmd):
    too_old = person(birth_date=adult_birth_date(30))
    refused = jmd.post("/api/v1/participants", json=too_old)
    assert refused.status_code == 422
    error = refused.json()["errors"]["birth_date"][0]
    assert error["code"] == "participant.age_out_of_range" and "18 to 27" in error["message"]
    too_young = jmd.post("/api/v1/participants", json=person(birth_date=adult_birth_date(16)))
    assert too_young.status_code == 422
    reason = "Älterer Geschwisterteil, vom Bündnis beschlossen"
    accepted = jmd.post("/api/v1/participants",
                        json={**too_old, "eligibility_override_reason": reason})
    assert accepted.status_code == 201
    assert accepted.json()["eligibility_override_reason"] == reason
    from tests.intake.conftest import sql

    rows = sql(platform, "intake", "SELECT action FROM audit_log WHERE action = "
               "'participant.eligibility_override'")
    assert rows


def test_the_edges_of_the_age_range_are_inside(jmd):
    assert jmd.post("/api/v1/participants",
                    json=person(birth_date=adult_birth_date(18))).status_code == 201
    assert jmd.post("/api/v1/participants",
                    json=person(birth_date=adult_birth_date(27))).status_code == 201


def test_the_age_range_is_told_together_with_other_errors(jmd):
    """A form with an age outside the range and a bad phone number gets both messages at once,
    not one after the other."""
    body = person(birth_date=adult_birth_date(30), contact={"phone": "not a number"})
    response = jmd.post("/api/v1/participants", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "18 to 27" in errors["birth_date"][0]["message"]
    assert "contact" in errors
