"""Who the gateway lets in, and as whom (issue: foundation)."""
from __future__ import annotations

import time

import pytest
import requests

from tests.support.tokens import TokenForge

pytestmark = pytest.mark.platform

# DESIGN.md's demo table: username → (organisation, type, alliance, roles).
DEMO_USERS = {
    "ministry.analyst": ("mkjfgfi-nrw", "ministry", None, ["ministry"]),
    "coord.leverkusen": ("ki-leverkusen", "municipality", "leverkusen",
                         ["coordinator", "core_group"]),
    "cw.jmd-leverkusen": ("jmd-leverkusen", "jmd", "leverkusen", ["case_worker"]),
    "audit.jmd-leverkusen": ("jmd-leverkusen", "jmd", "leverkusen", ["auditor"]),
    "cw.caritas-leverkusen": ("caritas-leverkusen", "ngo", "leverkusen", ["case_worker"]),
    "core.caritas-leverkusen": ("caritas-leverkusen", "ngo", "leverkusen", ["core_group"]),
    "cw.awo-leverkusen": ("awo-leverkusen", "ngo", "leverkusen", ["case_worker"]),
    "cw.jobservice-leverkusen": ("jobservice-leverkusen", "jobcenter", "leverkusen",
                                 ["case_worker"]),
    "coord.rhein-kreis-neuss": ("ki-rhein-kreis-neuss", "municipality", "rhein-kreis-neuss",
                                ["coordinator", "core_group"]),
    "cw.stadt-meerbusch": ("stadt-meerbusch", "municipality", "rhein-kreis-neuss",
                           ["case_worker"]),
    "cw.stadt-dormagen": ("stadt-dormagen", "municipality", "rhein-kreis-neuss",
                          ["case_worker"]),
    "cw.jmd-neuss": ("jmd-neuss", "jmd", "rhein-kreis-neuss", ["case_worker"]),
    "cw.meerbusch-hilft": ("meerbusch-hilft", "ngo", "rhein-kreis-neuss", ["case_worker"]),
}


@pytest.fixture(scope="module")
def forge(platform):
    return TokenForge(platform)


def me(platform, token: str | None, **headers) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{platform.gateway_url}/api/v1/me", headers=headers, timeout=10)


@pytest.mark.parametrize("username", sorted(DEMO_USERS))
def test_every_demo_user_sees_their_organisation_and_roles(platform, username):
    alias, org_type, alliance, roles = DEMO_USERS[username]
    response = me(platform, platform.token(username))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "username": username,
        "organization": {"alias": alias, "type": org_type, "alliance": alliance},
        "roles": roles,
    }


def test_without_a_token_the_answer_is_401_with_the_error_body(platform):
    response = me(platform, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == 401 and body["status"] == "Unauthorized"
    assert "Authorization" in body["message"]


def test_a_token_of_the_right_shape_and_key_passes(platform, forge):
    """The forged tokens below differ from this one in one thing each; this proves the rest
    of the forgery is sound, so each refusal is about that one thing."""
    response = me(platform, forge.sign(forge.like("cw.jmd-leverkusen")))
    assert response.status_code == 200
    assert response.json()["organization"]["alias"] == "jmd-leverkusen"


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("bad_signature", "invalid"),
        ("wrong_audience", "not meant for this API"),
        ("wrong_issuer", "another issuer"),
        ("expired", "expired"),
        ("not_yet_valid", "not valid yet"),
        ("alg_none", "RS256"),
        ("hs256_with_public_key", "RS256"),
        ("unknown_kid", "key the realm does not have"),
        ("kid_pointing_elsewhere", "key the realm does not have"),
        ("garbage", "malformed"),
        ("refresh_token_as_access_token", ""),
    ],
)
def test_forged_or_unfit_tokens_get_401(platform, forge, attack, message):
    now = int(time.time())
    claims = forge.like("cw.jmd-leverkusen")
    if attack == "bad_signature":
        token = forge.sign(claims, key=forge.other_key())
    elif attack == "wrong_audience":
        token = forge.sign({**claims, "aud": "account"})
    elif attack == "wrong_issuer":
        token = forge.sign({**claims, "iss": "http://127.0.0.1:1/realms/buendnis"})
    elif attack == "expired":
        token = forge.sign({**claims, "iat": now - 600, "exp": now - 300})
    elif attack == "not_yet_valid":
        token = forge.sign({**claims, "nbf": now + 600})
    elif attack == "alg_none":
        token = forge.unsigned(claims)
    elif attack == "hs256_with_public_key":
        token = forge.hs256_with_public_key(claims)
    elif attack == "unknown_kid":
        token = forge.sign(claims, key=forge.other_key(), headers={"kid": "not-a-realm-key"})
    elif attack == "kid_pointing_elsewhere":
        token = forge.sign(
            claims, key=forge.other_key(),
            headers={"kid": "attacker", "jku": "http://127.0.0.1:1/certs"},
        )
    elif attack == "garbage":
        token = "not.a.token"
    else:
        response = requests.post(
            f"{platform.idp_url}/realms/buendnis/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "buendnis-cli",
                  "username": "cw.jmd-leverkusen", "password": "demo"},
            timeout=10,
        )
        token = response.json()["refresh_token"]
    response = me(platform, token)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 401
    assert message in response.json()["message"]


def test_a_valid_token_without_an_organisation_gets_403(platform, forge):
    token = forge.sign(forge.like("cw.jmd-leverkusen", organization=None))
    response = me(platform, token)
    assert response.status_code == 403
    assert "no organisation" in response.json()["message"]


def test_a_valid_token_with_two_organisations_gets_403(platform, forge):
    claims = forge.claims_of("cw.jmd-leverkusen")
    two = {**claims["organization"], **forge.claims_of("cw.caritas-leverkusen")["organization"]}
    response = me(platform, forge.sign(forge.like("cw.jmd-leverkusen", organization=two)))
    assert response.status_code == 403
    assert "more than one organisation" in response.json()["message"]


def test_a_service_account_token_cannot_use_the_public_api(platform):
    response = me(platform, platform.service_token("referrals"))
    assert response.status_code == 403


def test_the_request_id_is_echoed_or_made(platform):
    token = platform.token("cw.jmd-leverkusen")
    assert me(platform, token, **{"X-Request-ID": "req-123"}).headers["X-Request-ID"] == "req-123"
    made = me(platform, token).headers["X-Request-ID"]
    assert len(made) == 36 and made != "req-123"
    bad = me(platform, token, **{"X-Request-ID": "x" * 300}).headers["X-Request-ID"]
    assert bad != "x" * 300
