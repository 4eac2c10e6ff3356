"""Demo users of two alliances working referrals through the gateway, and the helpers their
stories share: register a participant in intake, record a consent, refer, look in a database."""
from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text

from buendnis_common import migrate
from buendnis_common.settings import OidcSettings, ServiceSettings
from referrals.app import create_app
from referrals.config import ReferralsConfig
from tests.support.platform import ApiClient, Platform, free_port

ALL_CATEGORIES = ["identity", "contact", "languages", "residence", "needs", "education"]


def person(**changes) -> dict:
    """A fictional participant with something in every data category."""
    data = {
        "given_name": "Samira",
        "family_name": "Nouri",
        "birth_date": "2003-04-05",
        "residence_status": "aufenthaltsgestattung",
        "residence_valid_until": (date.today() + timedelta(days=200)).isoformat(),
        "gender": "female",
        "nationality": "AF",
        "languages": ["fa", "de"],
        "municipality": "Leverkusen",
        "contact": {"phone": "+491701234567", "email": "samira@example.org",
                    "preferred_channel": "sms", "language": "fa"},
        "education": {"highest_qualification": "lower_secondary", "years_of_schooling": 9,
                      "note": "Schule in Herat"},
        "needs": [{"category": "language_course", "note": "B1 angestrebt"},
                  {"category": "internship"}],
    }
    data.update(changes)
    return data


class Users:
    """One API client per demo user, each with a fresh token."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._clients: dict[str, ApiClient] = {}

    def __getitem__(self, username: str) -> ApiClient:
        if username not in self._clients:
            self._clients[username] = self.platform.as_user(username)
        return self._clients[username]


@pytest.fixture
def users(platform) -> Users:
    return Users(platform)


@pytest.fixture
def jmd(users) -> ApiClient:
    """The sender in most stories: a case worker of the JMD Leverkusen."""
    return users["cw.jmd-leverkusen"]


@pytest.fixture
def caritas(users) -> ApiClient:
    """The receiver in most stories: a case worker of the Caritas Leverkusen."""
    return users["cw.caritas-leverkusen"]


@pytest.fixture
def awo(users) -> ApiClient:
    """A third organisation of the same alliance."""
    return users["cw.awo-leverkusen"]


@pytest.fixture
def meerbusch(users) -> ApiClient:
    """An organisation of another alliance (Rhein-Kreis Neuss)."""
    return users["cw.stadt-meerbusch"]


def register(client: ApiClient, **changes) -> dict:
    response = client.post("/api/v1/participants", json=person(**changes))
    assert response.status_code == 201, response.text
    return response.json()


def grant(client: ApiClient, participant_id: str, recipient: str,
          categories: list[str]) -> dict:
    response = client.post(
        f"/api/v1/participants/{participant_id}/consents",
        json={"recipient_org": recipient, "data_categories": categories, "purpose": "referral",
              "valid_until": (date.today() + timedelta(days=365)).isoformat()},
    )
    assert response.status_code == 201, response.text
    return response.json()


def refer(client: ApiClient, participant_id: str, to_org: str = "caritas-leverkusen",
          **changes):
    body = {"participant_id": participant_id, "to_org": to_org,
            "need_category": "language_course", "note": "Bitte Sprachkurs ab März"}
    body.update(changes)
    return client.post("/api/v1/referrals", json=body)


@pytest.fixture
def consented_referral(jmd):
    """JMD refers a participant to Caritas, who consented to share identity and languages
    with Caritas only. Returns (participant, referral)."""
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["identity", "languages"])
    response = refer(jmd, participant["id"])
    assert response.status_code == 201, response.text
    return participant, response.json()


def set_status(client: ApiClient, referral_id: str, status: str, reason: str | None = None):
    body = {"status": status}
    if reason is not None:
        body["reason"] = reason
    return client.post(f"/api/v1/referrals/{referral_id}/status", json=body)


def query(platform: Platform, service: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def same_id(a, b) -> bool:
    return str(uuid.UUID(str(a))) == str(uuid.UUID(str(b)))


def events_of(platform: Platform, event_type: str, **match) -> list[dict]:
    """The referrals outbox's events of one type whose data has the given values."""
    found = []
    for (data,) in query(platform, "referrals", "SELECT data FROM outbox WHERE type = :type "
                         "ORDER BY seq", type=event_type):
        payload = data if isinstance(data, dict) else json.loads(data)
        if all(payload.get(key) == value for key, value in match.items()):
            found.append(payload)
    return found


@pytest.fixture
def referrals_app(tmp_path):
    """The referrals service in-process on a fresh database, with a Redis that is not there
    (events stay in the outbox, where the test reads them)."""
    url = f"sqlite:///{tmp_path / 'referrals.sqlite3'}"
    migrate.upgrade("referrals", url)
    idp = f"http://127.0.0.1:{free_port()}"
    oidc = OidcSettings(server_url=idp, realm="buendnis", issuer=f"{idp}/realms/buendnis",
                        jwks_url=f"{idp}/certs", token_url=f"{idp}/token",
                        audience="buendnis-api", jwks_min_refresh_seconds=10,
                        leeway_seconds=0)
    settings = ServiceSettings(
        name="referrals", database_url=url, redis_url=f"redis://127.0.0.1:{free_port()}/0",
        oidc=oidc, client_id="referrals-service", client_secret="x",
        service_urls={"intake": idp, "referrals": idp, "notifications": idp},
        http_timeout_seconds=1.0, relay_interval_seconds=1.0,
    )
    config = ReferralsConfig(response_days_by_alliance={"rhein-kreis-neuss": 2})
    app = create_app(settings, config)
    yield app
    app.extensions["buendnis"].db.dispose()
