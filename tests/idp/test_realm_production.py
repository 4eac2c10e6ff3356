"""The realm Keycloak imports in compose is fit for production; the demo people are not in it.

Keycloak's own enforcement (lock-out, password policy) cannot run here (no Keycloak in the test
environment); these tests pin the realm file's settings in Keycloak's syntax, and show with the
local provider that the demo users come only from the separate development file.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml

from buendnis_idp import create_app, load_realm, realm_representation
from buendnis_idp.realm import DEFAULT_DEMO_USERS_FILE, RealmFileError

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
TOKEN_PATH = "/realms/buendnis/protocol/openid-connect/token"
# Keycloak 26's password policy provider ids (org.keycloak.policy.*PasswordPolicyProviderFactory).
KEYCLOAK_POLICIES = {
    "length", "maxLength", "notUsername", "notEmail", "passwordHistory", "digits", "lowerCase",
    "upperCase", "specialChars", "regexPattern", "forceExpiredPasswordChange", "hashAlgorithm",
    "hashIterations", "passwordBlacklist", "maxAuthAge", "notContainsUsername",
}
POLICY_TERM = re.compile(r"^([A-Za-z]+)\(([^()]*)\)$")


def _policy(realm: dict) -> dict[str, str]:
    terms = {}
    for term in realm["passwordPolicy"].split(" and "):
        match = POLICY_TERM.match(term.strip())
        assert match, f"not Keycloak's policy syntax: {term!r}"
        terms[match.group(1)] = match.group(2)
    return terms


def test_brute_force_protection_locks_out_for_a_while(production_realm_rep):
    realm = production_realm_rep
    assert realm["bruteForceProtected"] is True
    # Temporary, growing lock-outs: an attacker cannot lock a colleague out for good.
    assert realm["permanentLockout"] is False
    assert 3 <= realm["failureFactor"] <= 10
    assert realm["waitIncrementSeconds"] >= 60
    assert realm["maxFailureWaitSeconds"] >= 900
    assert realm["maxDeltaTimeSeconds"] >= 3600
    assert realm["minimumQuickLoginWaitSeconds"] >= 60


def test_password_policy_in_keycloak_syntax(production_realm_rep):
    policy = _policy(production_realm_rep)
    assert set(policy) <= KEYCLOAK_POLICIES, set(policy) - KEYCLOAK_POLICIES
    assert int(policy["length"]) >= 12
    assert int(policy["maxLength"]) >= 64  # long passphrases stay possible
    assert {"notUsername", "notEmail"} <= set(policy)
    assert int(policy["passwordHistory"]) >= 3


def test_the_realm_file_holds_no_person_and_no_password(production_realm_rep):
    """Production imports this file alone: only the service accounts, no credentials (the demo
    password would also break Keycloak's import under the password policy)."""
    users = production_realm_rep["users"]
    assert users and all(u.get("serviceAccountClientId") for u in users)
    assert not any(u.get("credentials") for u in users)
    assert all(not org.get("members") for org in production_realm_rep["organizations"])
    assert '"value": "demo"' not in (REPO / "infra/keycloak/buendnis-realm.json").read_text()


def test_the_demo_users_live_in_the_development_file(realm_file, production_realm_rep):
    merged = realm_representation(realm_file, env=False)
    people = [u for u in merged["users"] if not u.get("serviceAccountClientId")]
    assert len(people) >= 10
    assert all(u["credentials"][0]["value"] == "demo" for u in people)
    members = {m["username"] for org in merged["organizations"] for m in org["members"]}
    assert members == {u["username"] for u in people}
    # Everything else is the realm file's, unchanged.
    assert {k: v for k, v in merged.items() if k not in ("users", "organizations")} == {
        k: v for k, v in production_realm_rep.items() if k not in ("users", "organizations")
    }


def test_direct_access_grants_only_for_the_documented_cli_client(production_realm_rep):
    """The password grant is for the README's curl example (public client buendnis-cli); the
    web front end and the service accounts cannot take a password."""
    granting = {
        c["clientId"] for c in production_realm_rep["clients"] if c.get("directAccessGrantsEnabled")
    }
    assert granting == {"buendnis-cli"}
    (cli,) = [c for c in production_realm_rep["clients"] if c["clientId"] == "buendnis-cli"]
    assert cli["publicClient"] is True and not cli.get("serviceAccountsEnabled")
    assert not cli.get("standardFlowEnabled")


def test_compose_imports_the_realm_without_the_demo_users():
    keycloak = yaml.safe_load(COMPOSE.read_text())["services"]["keycloak"]
    sources = [v["source"] if isinstance(v, dict) else v.split(":")[0]
               for v in keycloak.get("volumes", [])]
    assert "./infra/keycloak/buendnis-realm.json" in sources
    assert not any("demo" in source for source in sources), sources


def _password_grant(client, username: str) -> int:
    return client.post(TOKEN_PATH, data={
        "grant_type": "password", "client_id": "buendnis-cli",
        "username": username, "password": "demo",
    }).status_code


def test_the_local_provider_signs_in_demo_users_only_from_the_overlay(realm_file, monkeypatch):
    with_demo = create_app(realm_file, issuer_base="http://127.0.0.1:9").test_client()
    assert _password_grant(with_demo, "cw.jmd-leverkusen") == 200
    monkeypatch.setenv("IDP_DEMO_USERS_FILE", "none")
    without = create_app(realm_file, issuer_base="http://127.0.0.1:9").test_client()
    assert _password_grant(without, "cw.jmd-leverkusen") == 401


def test_a_demo_users_file_of_another_realm_is_refused(realm_file, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(DEFAULT_DEMO_USERS_FILE.read_text().replace('"buendnis"', '"other"', 1))
    with pytest.raises(RealmFileError, match="not 'buendnis'"):
        load_realm(realm_file, demo_users=other)


def test_the_running_local_provider_signs_in_a_demo_user_from_the_overlay(idp_server):
    answer = requests.post(f"{idp_server.base_url}{TOKEN_PATH}", data={
        "grant_type": "password", "client_id": "buendnis-cli",
        "username": "coord.leverkusen", "password": "demo",
    }, timeout=10)
    assert answer.status_code == 200 and answer.json()["access_token"]
