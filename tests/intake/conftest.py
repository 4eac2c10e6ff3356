from __future__ import annotations

import itertools
from datetime import date

import pytest
from sqlalchemy import create_engine, text

_counter = itertools.count(1)


def adult_birth_date(age: int = 22) -> str:
    today = date.today()
    return date(today.year - age, 1, 15).isoformat() if today.month > 1 else \
        date(today.year - age - 1, 1, 15).isoformat()


def person(**changes) -> dict:
    """A valid registration; each call a different name so tests do not see each other."""
    n = next(_counter)
    body = {
        "given_name": f"Amira{n}",
        "family_name": "Yousef",
        "birth_date": adult_birth_date(),
        "residence_status": "aufenthaltsgestattung",
        "gender": "female",
        "nationality": "SY",
        "languages": ["ar", "de"],
        "municipality": "Leverkusen",
        "contact": {"phone": "+4917612345678", "email": f"amira{n}@example.org",
                    "preferred_channel": "sms", "language": "ar"},
        "education": {"highest_qualification": "lower_secondary", "years_of_schooling": 9},
        "needs": [{"category": "language_course", "note": "B1 angestrebt"},
                  {"category": "vocational_training"}],
    }
    body.update(changes)
    return body


@pytest.fixture
def jmd(platform):
    return platform.as_user("cw.jmd-leverkusen")


@pytest.fixture
def caritas(platform):
    return platform.as_user("cw.caritas-leverkusen")


@pytest.fixture
def meerbusch(platform):
    return platform.as_user("cw.stadt-meerbusch")


@pytest.fixture
def registered(jmd):
    response = jmd.post("/api/v1/participants", json=person())
    assert response.status_code == 201, response.text
    return response.json()


def sql(platform, service: str, statement: str, **params):
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else None
    finally:
        engine.dispose()
