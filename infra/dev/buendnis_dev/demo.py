"""Loads the demo alliance's sample data through the public API and prints how to use it.

The organisations, users and roles of the demo alliance live in the realm file, which the identity
provider reads; this adds a few fictional participants so that the pages and the API have
something to show. It is idempotent: an organisation that already has participants is left as is.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import requests

from buendnis_dev import wait_for_stop
from buendnis_idp import realm_representation

REALM_FILE = Path(__file__).resolve().parents[2] / "keycloak" / "buendnis-realm.json"

# Fictional people; any likeness is chance.
SAMPLE_PARTICIPANTS = {
    "cw.jmd-leverkusen": [
        {"given_name": "Samir", "family_name": "Haddad", "birth_date": "2004-03-14",
         "residence_status": "aufenthaltsgestattung"},
        {"given_name": "Aryana", "family_name": "Karimi", "birth_date": "2002-11-02",
         "residence_status": "duldung"},
    ],
    "cw.stadt-meerbusch": [
        {"given_name": "Yonas", "family_name": "Tesfaye", "birth_date": "2003-06-30",
         "residence_status": "aufenthaltserlaubnis"},
    ],
}


# The offer catalogue of the demo alliances ("Transparenz über bestehende Angebote").
SAMPLE_OFFERS = {
    "cw.caritas-leverkusen": {
        "title": "Deutschkurs B1 am Abend", "category": "language_course",
        "languages": ["de", "ar"], "municipality": "Leverkusen", "mode": "in_person",
        "min_age": 18, "max_age": 27, "capacity": 12, "schedule": "Mo–Do 18–20 Uhr",
        "description": "Abendkurs für junge Erwachsene, die tagsüber arbeiten oder ein Praktikum "
                       "machen."},
    "cw.awo-leverkusen": {
        "title": "Migrationsberatung für junge Erwachsene", "category": "counselling",
        "languages": ["de", "ar", "fa"], "municipality": "Leverkusen", "mode": "mixed",
        "description": "Beratung vor Ort, am Telefon oder per Video."},
    "cw.jobservice-leverkusen": {
        "title": "Einstiegsqualifizierung Handwerk", "category": "vocational_training",
        "eligible_residence_statuses": ["aufenthaltsgestattung", "aufenthaltserlaubnis",
                                        "niederlassungserlaubnis"],
        "municipality": "Leverkusen", "capacity": 8},
    "coord.leverkusen": {
        "title": "Unterstützung bei der Identitätsklärung", "category": "identity_clarification",
        "languages": ["de", "en", "fr"], "municipality": "Leverkusen"},
    "cw.stadt-meerbusch": {
        "title": "Praktikumsbörse Meerbusch", "category": "internship",
        "municipality": "Meerbusch"},
    "cw.meerbusch-hilft": {
        "title": "Sprachcafé", "category": "language_course", "languages": ["de", "ti", "ar"],
        "municipality": "Meerbusch", "capacity": 20},
}


def demo_users(realm_file: Path = REALM_FILE) -> list[tuple[str, str, list[str]]]:
    """(username, organisation alias, roles) of every demo person in the realm file."""
    # The demo people live in the development overlay beside the realm file.
    realm = realm_representation(realm_file, env=False)
    org_of: dict[str, str] = {}
    for org in realm.get("organizations", []):
        for member in org.get("members", []):
            org_of[member.get("username", "")] = org["alias"]
    platform = {"case_worker", "coordinator", "core_group", "ministry", "auditor"}
    return [
        (user["username"], org_of.get(user["username"], "—"),
         sorted(set(user.get("realmRoles", [])) & platform))
        for user in realm.get("users", [])
        if not user.get("serviceAccountClientId")
    ]


def token(idp_url: str, username: str) -> str:
    response = requests.post(
        f"{idp_url}/realms/buendnis/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "buendnis-cli",
              "username": username, "password": "demo"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def wait_until_ready(url: str, timeout: float = 180.0, what: str = "the platform") -> None:
    """Until ``url`` (a readiness or health check) answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(1)  # not up yet
            continue
        time.sleep(1)
    raise SystemExit(f"{what} did not become ready within {timeout:.0f} s")


def load(gateway_url: str, idp_url: str) -> int:
    created = 0
    for username, participants in SAMPLE_PARTICIPANTS.items():
        headers = {"Authorization": f"Bearer {token(idp_url, username)}"}
        existing = requests.get(f"{gateway_url}/api/v1/participants", headers=headers, timeout=10)
        existing.raise_for_status()
        if existing.json():
            continue
        for body in participants:
            response = requests.post(
                f"{gateway_url}/api/v1/participants", json=body, headers=headers, timeout=10
            )
            response.raise_for_status()
            created += 1
    for username, offer in SAMPLE_OFFERS.items():
        headers = {"Authorization": f"Bearer {token(idp_url, username)}"}
        me = requests.get(f"{gateway_url}/api/v1/me", headers=headers, timeout=10).json()
        existing = requests.get(f"{gateway_url}/api/v1/offers", headers=headers, timeout=10,
                                params={"provider_org": me["organization"]["alias"]})
        existing.raise_for_status()
        if existing.json():
            continue
        response = requests.post(f"{gateway_url}/api/v1/offers", json=offer, headers=headers,
                                 timeout=10)
        response.raise_for_status()
        created += 1
    return created


def banner(gateway_url: str, idp_url: str, web_url: str) -> str:
    lines = [
        "",
        "Bündnis is running (local development; demo data only).",
        "",
        f"  Web-Oberfläche: {web_url}",
        "  Open it in a browser and sign in with one of the demo users below (password: demo).",
        "",
        f"  Gateway (API)        {gateway_url}   e.g. {gateway_url}/api/v1/me",
        f"  Identity provider    {idp_url}/realms/buendnis   (development only, not Keycloak)",
        f"  Health               {gateway_url}/readyz",
        f"  SMTP sink            127.0.0.1:{os.environ.get('SMTP_PORT', '1025')}"
        "   messages in var/mail/new",
        f"  SMS sink             127.0.0.1:{os.environ.get('SMS_PORT', '1026')}"
        "   messages in var/sms/messages.jsonl",
        "  Answer an SMS reminder as the participant (signed as the provider signs):",
        "    .venv/bin/python -m buendnis_dev.sms reply --from +49170… --body JA   (or NEIN, STOP)",
        "",
        "Demo logins (password: demo) — for the Web-Oberfläche, or the API with client_id "
        "buendnis-cli:",
    ]
    for username, org, roles in demo_users():
        lines.append(f"  {username:<26} {org:<24} {', '.join(roles)}")
    lines += [
        "",
        "Get a token:",
        f"  curl -s -d grant_type=password -d client_id=buendnis-cli -d username=cw.jmd-leverkusen"
        f" -d password=demo {idp_url}/realms/buendnis/protocol/openid-connect/token",
        "Stop everything with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    gateway_url = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8000')}"
    idp_url = f"http://127.0.0.1:{os.environ.get('IDP_PORT', '8080')}"
    web_url = (os.environ.get("WEB_URL")
               or f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8090')}").rstrip("/")
    wait_until_ready(f"{gateway_url}/readyz")
    created = load(gateway_url, idp_url)
    print(f"demo data loaded ({created} participants and offers added)", flush=True)
    wait_until_ready(f"{web_url}/healthz", what="the web front end")
    print(banner(gateway_url, idp_url, web_url), flush=True)
    wait_for_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
