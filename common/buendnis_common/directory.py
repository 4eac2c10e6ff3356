"""The organisations of the platform: alias → name, type and alliance.

The realm file is the single source of organisations (Keycloak imports it; the local identity
provider reads it); services read the same file, named by ``REALM_FILE``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .settings import env_str

DEFAULT_REALM_FILE = Path(__file__).resolve().parents[2] / "infra/keycloak/buendnis-realm.json"


@dataclass(frozen=True)
class Organization:
    alias: str
    name: str
    type: str | None
    alliance: str | None


def _first(attributes: dict, name: str) -> str | None:
    values = attributes.get(name) or []
    return values[0] if values else None


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Organization]:
    realm = json.loads(Path(path).read_text(encoding="utf-8"))
    organizations = {}
    for entry in realm.get("organizations", []):
        attributes = entry.get("attributes") or {}
        organizations[entry["alias"]] = Organization(
            alias=entry["alias"],
            name=entry.get("name", entry["alias"]),
            type=_first(attributes, "type"),
            alliance=_first(attributes, "alliance"),
        )
    return organizations


def organizations() -> dict[str, Organization]:
    return _load(env_str("REALM_FILE", str(DEFAULT_REALM_FILE)))


def organization(alias: str) -> Organization | None:
    return organizations().get(alias)


def same_alliance(alias: str, alliance: str | None) -> bool:
    found = organization(alias)
    return found is not None and alliance is not None and found.alliance == alliance
