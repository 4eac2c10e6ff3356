"""The local identity provider behaves like Keycloak 26 for the Bündnis realm.

Realm-file tests check what Keycloak will import; server tests drive the provider over HTTP with
python-keycloak exactly as a service would drive Keycloak.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.common import JWException
from jwcrypto.jwt import JWTExpired
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakGetError, KeycloakPostError

from buendnis_idp import create_app, load_realm
from buendnis_idp.realm import replace_placeholders

PASSWORD = "demo"
API_AUDIENCE = "buendnis-api"
SECRETS = {
    "intake-service": ("INTAKE_CLIENT_SECRET", "demo-intake-secret"),
    "referrals-service": ("REFERRALS_CLIENT_SECRET", "demo-referrals-secret"),
    "notifications-service": ("NOTIFICATIONS_CLIENT_SECRET", "demo-notifications-secret"),
}

# DESIGN.md, "Demo alliance": alias → (type, alliance, {username: roles}).
ALLIANCE: dict[str, tuple[str, str | None, dict[str, set[str]]]] = {
    "mkjfgfi-nrw": ("ministry", None, {"ministry.analyst": {"ministry"}}),
    "ki-leverkusen": (
        "municipality",
        "leverkusen",
        {"coord.leverkusen": {"coordinator", "core_group"}},
    ),
    "jmd-leverkusen": (
        "jmd",
        "leverkusen",
        {"cw.jmd-leverkusen": {"case_worker"}, "audit.jmd-leverkusen": {"auditor"}},
    ),
    "caritas-leverkusen": (
        "ngo",
        "leverkusen",
        {"cw.caritas-leverkusen": {"case_worker"}, "core.caritas-leverkusen": {"core_group"}},
    ),
    "awo-leverkusen": ("ngo", "leverkusen", {"cw.awo-leverkusen": {"case_worker"}}),
    "jobservice-leverkusen": (
        "jobcenter",
        "leverkusen",
        {"cw.jobservice-leverkusen": {"case_worker"}},
    ),
    "ki-rhein-kreis-neuss": (
        "municipality",
        "rhein-kreis-neuss",
        {"coord.rhein-kreis-neuss": {"coordinator", "core_group"}},
    ),
    "stadt-meerbusch": (
        "municipality",
        "rhein-kreis-neuss",
        {"cw.stadt-meerbusch": {"case_worker"}},
    ),
    "stadt-dormagen": ("municipality", "rhein-kreis-neuss", {"cw.stadt-dormagen": {"case_worker"}}),
    "jmd-neuss": ("jmd", "rhein-kreis-neuss", {"cw.jmd-neuss": {"case_worker"}}),
    "meerbusch-hilft": ("ngo", "rhein-kreis-neuss", {"cw.meerbusch-hilft": {"case_worker"}}),
}
DEMO_USERS = {
    user: (alias, roles)
    for alias, (_, _, users) in ALLIANCE.items()
    for user, roles in users.items()
}
ROLES = {"case_worker", "coordinator", "core_group", "ministry", "auditor", "service"}


def _is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def _error(exc: Exception) -> dict[str, Any]:
    return json.loads(exc.response_body)


def _unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- the realm file that Keycloak imports ------------------------------------------------------


def test_realm_file_enables_organizations_with_keycloak_settings(realm_rep):
    assert realm_rep["realm"] == "buendnis"
    assert realm_rep["enabled"] is True
    assert realm_rep["organizationsEnabled"] is True
    assert realm_rep["sslRequired"] == "external"
    assert realm_rep["accessTokenLifespan"] == 300


def test_realm_file_defines_the_platform_roles_with_descriptions(realm_rep):
    roles = _by(realm_rep["roles"]["realm"], "name")
    assert set(roles) == ROLES
    assert all(role["description"] and role["composite"] is False for role in roles.values())
    assert "service-account users" in roles["service"]["description"]
    assert "offer catalogue" in roles["coordinator"]["description"]
    assert "audit log" in roles["auditor"]["description"]


def test_realm_file_organisations_are_the_demo_alliance(realm_rep):
    organisations = _by(realm_rep["organizations"], "alias")
    assert set(organisations) == set(ALLIANCE)
    ids = set()
    for alias, (org_type, alliance, users) in ALLIANCE.items():
        org = organisations[alias]
        assert _is_uuid(org["id"])
        ids.add(org["id"])
        assert org["enabled"] is True
        assert org["name"] and org["name"] != alias
        assert org["domains"] == [{"name": f"{alias}.buendnis.example", "verified": False}]
        expected = (
            {"type": [org_type]}
            if alliance is None
            else {"type": [org_type], "alliance": [alliance]}
        )
        assert org["attributes"] == expected
        assert {m["username"] for m in org["members"]} == set(users)
    assert len(ids) == len(ALLIANCE)
    assert organisations["jmd-leverkusen"]["name"] == "Jugendmigrationsdienst Leverkusen"


def test_realm_file_demo_users_have_fixed_ids_email_names_and_password(realm_rep):
    users = _by(realm_rep["users"], "username")
    for username, (_, roles) in DEMO_USERS.items():
        user = users[username]
        assert _is_uuid(user["id"])
        assert user["email"] == f"{username}@buendnis.example"
        assert user["firstName"] and user["lastName"]
        assert user["enabled"] is True and user["emailVerified"] is True
        assert user["credentials"] == [{"type": "password", "value": PASSWORD, "temporary": False}]
        assert set(user["realmRoles"]) == roles
    member_ids = {m["id"] for org in realm_rep["organizations"] for m in org["members"]}
    assert member_ids == {users[name]["id"] for name in DEMO_USERS}


def test_realm_file_service_accounts_hold_only_the_service_role(realm_rep):
    users = _by(realm_rep["users"], "username")
    for client_id in SECRETS:
        user = users[f"service-account-{client_id}"]
        assert user["serviceAccountClientId"] == client_id
        assert user["realmRoles"] == ["service"]
        assert user["enabled"] is True and not user["credentials"]
    holders = {u["username"] for u in realm_rep["users"] if "service" in u.get("realmRoles", [])}
    assert holders == {f"service-account-{c}" for c in SECRETS}


def test_realm_file_clients_have_the_designed_flows(realm_rep):
    clients = _by(realm_rep["clients"], "clientId")
    assert set(clients) == {"buendnis-cli", "buendnis-web", *SECRETS}

    cli = clients["buendnis-cli"]
    assert (cli["publicClient"], cli["directAccessGrantsEnabled"], cli["standardFlowEnabled"]) == (
        True,
        True,
        False,
    )

    web = clients["buendnis-web"]
    assert (web["publicClient"], web["standardFlowEnabled"], web["directAccessGrantsEnabled"]) == (
        True,
        True,
        False,
    )
    assert web["attributes"]["pkce.code.challenge.method"] == "S256"
    assert web["redirectUris"] == ["http://127.0.0.1:8090/*", "http://localhost:8090/*"]
    assert web["webOrigins"] == ["http://127.0.0.1:8090", "http://localhost:8090"]

    for client_id, (variable, default) in SECRETS.items():
        client = clients[client_id]
        assert client["publicClient"] is False and client["serviceAccountsEnabled"] is True
        assert (
            client["standardFlowEnabled"] is False and client["directAccessGrantsEnabled"] is False
        )
        assert client["secret"] == f"${{{variable}:{default}}}"
        assert "service_account" in client["defaultClientScopes"]


def test_realm_file_every_client_maps_roles_organisation_and_audience(realm_rep):
    scopes = _by(realm_rep["clientScopes"], "name")
    org_mapper = scopes["organization"]["protocolMappers"][0]
    assert org_mapper["protocolMapper"] == "oidc-organization-membership-mapper"
    keys = (
        "addOrganizationId",
        "addOrganizationAttributes",
        "access.token.claim",
        "claim.name",
        "jsonType.label",
        "multivalued",
    )
    assert {k: org_mapper["config"].get(k) for k in keys} == {
        "addOrganizationId": "true",
        "addOrganizationAttributes": "true",
        "access.token.claim": "true",
        "claim.name": "organization",
        "jsonType.label": "JSON",
        "multivalued": "true",
    }
    role_mappers = {m["protocolMapper"]: m for m in scopes["roles"]["protocolMappers"]}
    assert (
        role_mappers["oidc-usermodel-realm-role-mapper"]["config"]["claim.name"]
        == "realm_access.roles"
    )
    assert any(m["protocolMapper"] == "oidc-sub-mapper" for m in scopes["basic"]["protocolMappers"])

    for client in realm_rep["clients"]:
        # Keycloak maps organisations only for an active "organization" scope: a default scope
        # makes the claim present without the client asking for it.
        assert {"basic", "profile", "email", "roles", "organization"} <= set(
            client["defaultClientScopes"]
        )
        audience = [
            m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"
        ]
        assert len(audience) == 1
        assert audience[0]["config"]["included.custom.audience"] == API_AUDIENCE
        assert audience[0]["config"]["access.token.claim"] == "true"


# --- placeholders like kc.sh --import-realm ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${SECRET:demo-secret}", {}, "demo-secret"),
        ("${SECRET:demo-secret}", {"SECRET": "from-env"}, "from-env"),
        ("${SECRET:}", {}, ""),
        ("${SECRET}", {}, "${SECRET}"),
        ("${profileScopeConsentText}", {}, "${profileScopeConsentText}"),
        ("${A,B:fallback}", {"B": "second"}, "second"),
        ("${A,B:fallback}", {}, "fallback"),
        ("${URL:http://localhost:8080/x}", {}, "http://localhost:8080/x"),
        ('{"secret": "${S:d}", "x": "${U}"}', {"S": "s"}, '{"secret": "s", "x": "${U}"}'),
        ("${OUTER:${INNER:deep}}", {}, "deep"),
        ("$${S:x} $S {S}", {}, "$x $S {S}"),
        ("${SECRET:d}", {"SECRET": ""}, ""),
    ],
)
def test_placeholders_resolve_like_keycloak(text, env, expected):
    assert replace_placeholders(text, env.get) == expected


def test_client_secret_comes_from_the_environment(realm_file, monkeypatch):
    monkeypatch.setenv("INTAKE_CLIENT_SECRET", "rotated-secret")
    realm = load_realm(realm_file)
    assert realm.client("intake-service").check_secret("rotated-secret")
    assert not realm.client("intake-service").check_secret("demo-intake-secret")
    assert realm.client("referrals-service").check_secret("demo-referrals-secret")

    client = create_app(realm_file, issuer_base="http://127.0.0.1:9").test_client()
    url = "/realms/buendnis/protocol/openid-connect/token"
    form = {"grant_type": "client_credentials", "client_id": "intake-service"}
    assert client.post(url, data={**form, "client_secret": "rotated-secret"}).status_code == 200
    assert client.post(url, data={**form, "client_secret": "demo-intake-secret"}).status_code == 401


# --- discovery and keys -------------------------------------------------------------------------


def test_discovery_document_points_to_keycloak_endpoints(keycloak, idp):
    config = keycloak().well_known()
    base = f"{idp.issuer}/protocol/openid-connect"
    assert config["issuer"] == idp.issuer == f"{idp.issuer_base}/realms/buendnis"
    assert config["token_endpoint"] == f"{base}/token"
    assert config["introspection_endpoint"] == f"{base}/token/introspect"
    assert config["userinfo_endpoint"] == f"{base}/userinfo"
    assert config["end_session_endpoint"] == f"{base}/logout"
    assert config["jwks_uri"] == f"{base}/certs"
    assert config["authorization_endpoint"] == f"{base}/auth"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"password", "client_credentials", "refresh_token"} <= set(
        config["grant_types_supported"]
    )
    assert {"openid", "organization", "roles"} <= set(config["scopes_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= set(
        config["token_endpoint_auth_methods_supported"]
    )


def test_realm_endpoint_publishes_the_signing_public_key(keycloak, idp, idp_server):
    der = base64.b64decode(keycloak().public_key())
    expected = idp.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == expected
    info = requests.get(f"{idp_server.base_url}/realms/buendnis", timeout=5).json()
    assert info == {
        "realm": "buendnis",
        "public_key": info["public_key"],
        "token-service": f"{idp.issuer}/protocol/openid-connect",
        "account-service": f"{idp.issuer}/account",
        "tokens-not-before": 0,
    }
    assert "BEGIN" not in info["public_key"]


def test_certs_publish_the_key_that_signs_tokens(keycloak, idp):
    keys = keycloak().certs()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert (key["kid"], key["kty"], key["alg"], key["use"]) == (idp.kid, "RSA", "RS256", "sig")
    public = jwt.PyJWK(key).key
    assert public.public_numbers() == idp.private_key.public_key().public_numbers()
    token = keycloak().token("cw.jmd-leverkusen", PASSWORD)["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": idp.kid}
    assert (
        jwt.decode(token, public, algorithms=["RS256"], audience=API_AUDIENCE)["azp"]
        == "buendnis-cli"
    )


def test_unknown_realm_is_answered_like_keycloak(idp_server):
    for path in (
        "/realms/master",
        "/realms/other/.well-known/openid-configuration",
        "/realms/x/protocol/openid-connect/certs",
    ):
        response = requests.get(f"{idp_server.base_url}{path}", timeout=5)
        assert response.status_code == 404
        assert response.json() == {"error": "Realm does not exist"}
    with pytest.raises(KeycloakGetError) as err:
        KeycloakOpenID(
            server_url=idp_server.base_url, realm_name="master", client_id="buendnis-cli"
        ).certs()
    assert err.value.response_code == 404


# --- logging in ---------------------------------------------------------------------------------


def test_case_worker_token_carries_organisation_roles_audience_and_issuer(keycloak, idp, realm_rep):
    kc = keycloak()
    response = kc.token("cw.jmd-leverkusen", PASSWORD)
    assert response["token_type"] == "Bearer"
    assert response["expires_in"] == 300
    assert response["refresh_expires_in"] == 1800
    assert response["not-before-policy"] == 0
    assert response["scope"].split()[0] == "openid" and "organization" in response["scope"].split()

    claims = kc.decode_token(response["access_token"], validate=True)
    org_id = _by(realm_rep["organizations"], "alias")["jmd-leverkusen"]["id"]
    user_id = _by(realm_rep["users"], "username")["cw.jmd-leverkusen"]["id"]
    assert claims["organization"] == {
        "jmd-leverkusen": {"id": org_id, "type": ["jmd"], "alliance": ["leverkusen"]}
    }
    assert claims["realm_access"] == {"roles": ["case_worker"]}
    assert claims["aud"] == API_AUDIENCE
    assert claims["iss"] == idp.issuer
    assert claims["sub"] == user_id
    assert claims["typ"] == "Bearer"
    assert claims["azp"] == "buendnis-cli"
    assert claims["sid"] == response["session_state"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == response["scope"]
    assert (claims["preferred_username"], claims["given_name"], claims["family_name"]) == (
        "cw.jmd-leverkusen",
        "Aylin",
        "Demir",
    )
    assert claims["name"] == "Aylin Demir"
    assert (
        claims["email"] == "cw.jmd-leverkusen@buendnis.example" and claims["email_verified"] is True
    )
    assert "client_id" not in claims


@pytest.mark.parametrize("username", sorted(DEMO_USERS))
def test_every_demo_user_logs_in_with_the_roles_and_organisation_of_the_table(keycloak, username):
    alias, roles = DEMO_USERS[username]
    org_type, alliance, _ = ALLIANCE[alias]
    claims = keycloak().decode_token(keycloak().token(username, PASSWORD)["access_token"])
    assert sorted(claims["realm_access"]["roles"]) == sorted(roles)
    assert list(claims["organization"]) == [alias]
    org = claims["organization"][alias]
    assert _is_uuid(org["id"])
    assert org["type"] == [org_type]
    assert org.get("alliance") == ([alliance] if alliance else None)
    assert claims["preferred_username"] == username


def test_login_by_email_address_works_like_keycloak(keycloak):
    claims = keycloak().decode_token(
        keycloak().token("cw.jmd-neuss@buendnis.example", PASSWORD)["access_token"]
    )
    assert claims["preferred_username"] == "cw.jmd-neuss"


def test_wrong_password_is_refused_with_401(keycloak):
    with pytest.raises(KeycloakAuthenticationError) as err:
        keycloak().token("cw.jmd-leverkusen", "not-the-password")
    assert err.value.response_code == 401
    assert _error(err.value) == {
        "error": "invalid_grant",
        "error_description": "Invalid user credentials",
    }


def test_unknown_user_is_refused_like_a_wrong_password(keycloak):
    with pytest.raises(KeycloakAuthenticationError) as err:
        keycloak().token("nobody", PASSWORD)
    assert _error(err.value) == {
        "error": "invalid_grant",
        "error_description": "Invalid user credentials",
    }


def test_service_account_user_cannot_log_in_with_a_password(keycloak):
    with pytest.raises(KeycloakAuthenticationError):
        keycloak().token("service-account-intake-service", "")


def test_wrong_client_secret_is_refused_with_401(keycloak):
    with pytest.raises(KeycloakAuthenticationError) as err:
        keycloak("intake-service", "wrong-secret").token(grant_type="client_credentials")
    assert err.value.response_code == 401
    assert _error(err.value) == {
        "error": "invalid_client",
        "error_description": "Invalid client or Invalid client credentials",
    }


def test_unknown_client_is_refused_with_401(keycloak):
    with pytest.raises(KeycloakAuthenticationError) as err:
        keycloak("no-such-client").token("cw.jmd-leverkusen", PASSWORD)
    assert _error(err.value)["error"] == "invalid_client"


def test_password_grant_is_refused_for_a_service_client(keycloak):
    with pytest.raises(KeycloakPostError) as err:
        keycloak("intake-service", "demo-intake-secret").token("cw.jmd-leverkusen", PASSWORD)
    assert err.value.response_code == 400
    assert _error(err.value) == {
        "error": "unauthorized_client",
        "error_description": "Client not allowed for direct access grants",
    }


def test_password_grant_is_refused_for_the_web_client(keycloak):
    with pytest.raises(KeycloakPostError) as err:
        keycloak("buendnis-web").token("cw.jmd-leverkusen", PASSWORD)
    assert _error(err.value)["error"] == "unauthorized_client"


def test_client_credentials_are_refused_for_a_public_client(keycloak):
    with pytest.raises(KeycloakPostError) as err:
        keycloak("buendnis-cli").token(grant_type="client_credentials")
    assert err.value.response_code == 400
    assert _error(err.value)["error"] == "unauthorized_client"


def test_unsupported_grant_and_unknown_scope_are_refused(keycloak):
    with pytest.raises(KeycloakPostError) as err:
        keycloak().token(
            "cw.jmd-leverkusen",
            PASSWORD,
            grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
        )
    assert _error(err.value) == {
        "error": "unsupported_grant_type",
        "error_description": "Unsupported grant_type",
    }
    with pytest.raises(KeycloakPostError) as err:
        keycloak().token("cw.jmd-leverkusen", PASSWORD, scope="openid admin")
    assert _error(err.value)["error"] == "invalid_scope"


def test_id_token_is_for_the_client_and_names_the_user(keycloak):
    response = keycloak().token("coord.leverkusen", PASSWORD)
    id_claims = keycloak().decode_token(response["id_token"])
    access = _unverified(response["access_token"])
    assert id_claims["typ"] == "ID"
    assert id_claims["aud"] == "buendnis-cli"
    assert id_claims["sub"] == access["sub"] and id_claims["sid"] == access["sid"]
    assert "ki-leverkusen" in id_claims["organization"]
    assert "realm_access" not in id_claims
    without_openid = keycloak().token("coord.leverkusen", PASSWORD, scope="")
    assert "id_token" not in without_openid
    assert "openid" not in without_openid["scope"].split()


# --- service accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", sorted(SECRETS))
def test_service_account_token_has_service_role_and_no_organisation(
    keycloak, idp, realm_rep, client_id
):
    kc = keycloak(client_id, SECRETS[client_id][1])
    response = kc.token(grant_type="client_credentials")
    assert "refresh_token" not in response and response["refresh_expires_in"] == 0
    claims = kc.decode_token(response["access_token"])
    user_id = _by(realm_rep["users"], "username")[f"service-account-{client_id}"]["id"]
    assert claims["sub"] == user_id
    assert claims["realm_access"] == {"roles": ["service"]}
    assert "organization" not in claims
    assert claims["aud"] == API_AUDIENCE
    assert claims["iss"] == idp.issuer
    assert claims["azp"] == claims["client_id"] == client_id
    assert claims["preferred_username"] == f"service-account-{client_id}"
    assert "sid" not in claims


def test_client_credentials_with_http_basic_authentication(idp, idp_server):
    response = requests.post(
        f"{idp.issuer}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials"},
        auth=("referrals-service", "demo-referrals-secret"),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert _unverified(response.json()["access_token"])["azp"] == "referrals-service"
    wrong = requests.post(
        f"{idp.issuer}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials"},
        auth=("referrals-service", "nope"),
        timeout=5,
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


# --- sessions: refresh, logout, userinfo, introspection -------------------------------------------


def test_refresh_issues_new_tokens_in_the_same_session(keycloak):
    kc = keycloak()
    first = kc.token("cw.caritas-leverkusen", PASSWORD)
    refresh_claims = _unverified(first["refresh_token"])
    assert refresh_claims["typ"] == "Refresh"
    assert refresh_claims["aud"] == _unverified(first["access_token"])["iss"]
    assert refresh_claims["exp"] - refresh_claims["iat"] == 1800

    second = kc.refresh_token(first["refresh_token"])
    old, new = _unverified(first["access_token"]), kc.decode_token(second["access_token"])
    assert new["jti"] != old["jti"]
    assert new["sid"] == old["sid"] == second["session_state"]
    assert new["organization"] == old["organization"]
    assert new["realm_access"] == {"roles": ["case_worker"]}


def test_refresh_token_of_another_client_is_refused(keycloak):
    refresh = keycloak().token("cw.awo-leverkusen", PASSWORD)["refresh_token"]
    with pytest.raises(KeycloakPostError) as err:
        keycloak("buendnis-web").refresh_token(refresh)
    assert err.value.response_code == 400 and _error(err.value)["error"] == "invalid_grant"


def test_invalid_refresh_token_is_refused(keycloak):
    refresh = keycloak().token("cw.awo-leverkusen", PASSWORD)["refresh_token"]
    header, payload, signature = refresh.split(".")
    with pytest.raises(KeycloakPostError) as err:
        keycloak().refresh_token(f"{header}.{payload}.{signature[:-4]}AAAA")
    assert err.value.response_code == 400 and _error(err.value)["error"] == "invalid_grant"


def test_logout_ends_the_session(keycloak, idp_server):
    kc = keycloak()
    tokens = kc.token("cw.stadt-dormagen", PASSWORD)
    assert kc.logout(tokens["refresh_token"]) == {}
    with pytest.raises(KeycloakPostError) as err:
        kc.refresh_token(tokens["refresh_token"])
    assert err.value.response_code == 400
    assert _error(err.value) == {
        "error": "invalid_grant",
        "error_description": "Session not active",
    }
    with pytest.raises(KeycloakAuthenticationError):
        kc.userinfo(tokens["access_token"])
    service = keycloak("intake-service", "demo-intake-secret")
    assert service.introspect(tokens["access_token"]) == {"active": False}


def test_logout_with_an_invalid_refresh_token_is_refused(keycloak, idp):
    tokens = keycloak().token("cw.jmd-neuss", PASSWORD)
    response = requests.post(
        f"{idp.issuer}/protocol/openid-connect/logout",
        data={"client_id": "buendnis-cli", "refresh_token": "not-a-token"},
        timeout=5,
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert keycloak().refresh_token(tokens["refresh_token"])["access_token"]


def test_userinfo_returns_the_users_claims(keycloak, realm_rep):
    kc = keycloak()
    tokens = kc.token("core.caritas-leverkusen", PASSWORD)
    info = kc.userinfo(tokens["access_token"])
    user = _by(realm_rep["users"], "username")["core.caritas-leverkusen"]
    assert info["sub"] == user["id"]
    assert info["preferred_username"] == "core.caritas-leverkusen"
    assert (info["given_name"], info["family_name"], info["name"]) == (
        "Markus",
        "Becker",
        "Markus Becker",
    )
    assert (
        info["email"] == "core.caritas-leverkusen@buendnis.example"
        and info["email_verified"] is True
    )
    assert list(info["organization"]) == ["caritas-leverkusen"]
    assert "realm_access" not in info


def test_userinfo_refuses_an_invalid_token_with_401(keycloak, idp):
    with pytest.raises(KeycloakAuthenticationError) as err:
        keycloak().userinfo("not-a-token")
    assert err.value.response_code == 401
    response = requests.get(
        f"{idp.issuer}/protocol/openid-connect/userinfo",
        headers={"Authorization": "Bearer x.y.z"},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="buendnis"')
    # Keycloak tells a bad token (invalid_token) from none at all (invalid_request).
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json()["error"] == "invalid_token"
    missing = requests.get(f"{idp.issuer}/protocol/openid-connect/userinfo", timeout=5)
    assert missing.status_code == 401
    assert 'error="invalid_request"' in missing.headers["WWW-Authenticate"]
    assert missing.json() == {"error": "invalid_request", "error_description": "Token not provided"}


def test_introspection_reports_an_active_token(keycloak):
    tokens = keycloak().token("audit.jmd-leverkusen", PASSWORD)
    result = keycloak("notifications-service", "demo-notifications-secret").introspect(
        tokens["access_token"]
    )
    assert result["active"] is True
    assert result["client_id"] == "buendnis-cli"
    assert result["username"] == "audit.jmd-leverkusen"
    assert result["token_type"] == "Bearer"
    assert result["realm_access"] == {"roles": ["auditor"]}
    assert list(result["organization"]) == ["jmd-leverkusen"]
    refresh = keycloak("notifications-service", "demo-notifications-secret").introspect(
        tokens["refresh_token"]
    )
    assert refresh["active"] is True and refresh["token_type"] == "Refresh"


def test_introspection_of_a_tampered_token_is_inactive(keycloak, idp):
    tokens = keycloak().token("cw.jmd-leverkusen", PASSWORD)
    header, payload, signature = tokens["access_token"].split(".")
    claims = _unverified(tokens["access_token"])
    claims["realm_access"] = {"roles": ["case_worker", "ministry"]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"

    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = jwt.encode(
        claims, foreign_key, algorithm="RS256", headers={"kid": idp.kid, "typ": "JWT"}
    )
    unsigned = jwt.encode(claims, None, algorithm="none")

    service = keycloak("intake-service", "demo-intake-secret")
    assert service.introspect(tokens["access_token"])["active"] is True
    for token in (tampered, foreign, unsigned, "garbage"):
        assert service.introspect(token) == {"active": False}
    with pytest.raises(JWException):
        keycloak().decode_token(tampered, validate=True)


def test_introspection_needs_an_authenticated_confidential_client(keycloak):
    token = keycloak().token("cw.jmd-leverkusen", PASSWORD)["access_token"]
    with pytest.raises(KeycloakPostError) as err:
        keycloak("buendnis-cli").introspect(token)
    assert err.value.response_code == 403
    with pytest.raises(KeycloakAuthenticationError):
        keycloak("intake-service", "wrong").introspect(token)


# --- lifetimes ----------------------------------------------------------------------------------


def test_access_token_expires_after_the_realm_lifespan(keycloak, idp):
    kc = keycloak()
    tokens = kc.token("cw.meerbusch-hilft", PASSWORD)
    assert kc.userinfo(tokens["access_token"])["preferred_username"] == "cw.meerbusch-hilft"
    now = time.time()
    idp.clock = lambda: now + 301
    with pytest.raises(KeycloakAuthenticationError):
        kc.userinfo(tokens["access_token"])
    assert keycloak("intake-service", "demo-intake-secret").introspect(tokens["access_token"]) == {
        "active": False
    }
    # Within the 1800 s idle timeout the session still refreshes.
    refreshed = kc.refresh_token(tokens["refresh_token"])
    assert _unverified(refreshed["access_token"])["exp"] == int(now + 301) + 300


def test_expired_token_fails_python_keycloak_validation(keycloak, idp):
    claims = _unverified(keycloak().token("cw.stadt-meerbusch", PASSWORD)["access_token"])
    claims["iat"], claims["exp"] = claims["iat"] - 3600, claims["iat"] - 3000
    expired = jwt.encode(
        claims, idp.private_key, algorithm="RS256", headers={"kid": idp.kid, "typ": "JWT"}
    )
    with pytest.raises(JWTExpired):
        keycloak().decode_token(expired, validate=True)


def test_session_ends_after_the_idle_timeout(keycloak, idp):
    kc = keycloak()
    tokens = kc.token("cw.jobservice-leverkusen", PASSWORD)
    now = time.time()
    idp.clock = lambda: now + 1801
    with pytest.raises(KeycloakPostError) as err:
        kc.refresh_token(tokens["refresh_token"])
    assert _error(err.value)["error"] == "invalid_grant"


# --- accounts the realm file disables -------------------------------------------------------------


def test_disabled_user_is_refused_with_account_disabled(realm_rep, tmp_path):
    rep = json.loads(json.dumps(realm_rep))
    _by(rep["users"], "username")["cw.awo-leverkusen"]["enabled"] = False
    realm_file = tmp_path / "realm.json"
    realm_file.write_text(json.dumps(rep), encoding="utf-8")
    client = create_app(realm_file, issuer_base="http://127.0.0.1:9").test_client()
    url = "/realms/buendnis/protocol/openid-connect/token"
    form = {"grant_type": "password", "client_id": "buendnis-cli", "username": "cw.awo-leverkusen"}
    response = client.post(url, data={**form, "password": PASSWORD})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_grant",
        "error_description": "Account disabled",
    }
    assert client.post(url, data={**form, "password": "wrong"}).status_code == 401


def test_app_exposes_key_issuer_and_realm_for_tests(realm_file):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    app = create_app(realm_file, issuer_base="http://127.0.0.1:8080/", signing_key_pem=pem)
    state = app.extensions["buendnis_idp"]
    assert state.private_key.private_numbers() == key.private_numbers()
    assert state["issuer"] == "http://127.0.0.1:8080/realms/buendnis"
    assert state.realm.name == "buendnis" and state.realm.organizations_enabled
    certs = app.test_client().get("/realms/buendnis/protocol/openid-connect/certs").get_json()
    assert certs["keys"][0]["kid"] == state.kid
    again = create_app(realm_file, issuer_base="http://127.0.0.1:8080", signing_key_pem=pem)
    assert again.extensions["buendnis_idp"].kid == state.kid  # the same key keeps its kid


# --- logs -----------------------------------------------------------------------------------------


def test_logs_hold_no_passwords_secrets_or_tokens(keycloak, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = keycloak().token("cw.jmd-leverkusen", PASSWORD)
    with pytest.raises(KeycloakAuthenticationError):
        keycloak().token("cw.jmd-leverkusen", "wrong-password-1234")
    service = keycloak("intake-service", "demo-intake-secret")
    service_tokens = service.token(grant_type="client_credentials")
    service.introspect(tokens["access_token"])
    keycloak().logout(tokens["refresh_token"])
    text = caplog.text
    assert "POST /realms/buendnis/protocol/openid-connect/token" in text
    leaks = [
        "wrong-password-1234",
        "demo-intake-secret",
        "cw.jmd-leverkusen",
        tokens["access_token"][-20:],
        tokens["refresh_token"][-20:],
        service_tokens["access_token"][-20:],
    ]
    assert [leak for leak in leaks if leak in text] == []


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org", "10.0.0.1"])
def test_cli_refuses_to_listen_beyond_loopback(host):
    result = subprocess.run(
        [sys.executable, "-m", "buendnis_idp", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr and host in result.stderr


def test_cli_serves_on_loopback_and_says_it_is_for_development(tmp_path):
    key_file = tmp_path / "keys" / "signing.pem"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "buendnis_idp",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--signing-key-file",
            str(key_file),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr], daemon=True
    ).start()
    seen: list[str] = []
    try:
        base_url = None
        deadline = time.monotonic() + 30
        while base_url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "".join(seen)
                continue
            seen.append(line)
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            base_url = match.group(1) if match else None
        assert base_url, "".join(seen)
        output = "".join(seen)
        assert "NOT FOR PRODUCTION" in output
        config = requests.get(
            f"{base_url}/realms/buendnis/.well-known/openid-configuration", timeout=5
        ).json()
        assert config["issuer"] == f"{base_url}/realms/buendnis"
        assert key_file.is_file() and (key_file.stat().st_mode & 0o077) == 0
        token = KeycloakOpenID(
            server_url=base_url, realm_name="buendnis", client_id="buendnis-cli"
        ).token("ministry.analyst", PASSWORD)
        assert "mkjfgfi-nrw" in _unverified(token["access_token"])["organization"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_default_realm_file_is_the_repository_file(realm_file):
    assert (
        realm_file
        == Path(__file__).resolve().parents[2] / "infra" / "keycloak" / "buendnis-realm.json"
    )
