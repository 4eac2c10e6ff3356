"""Bündnis local identity provider: a Keycloak-compatible OIDC provider for development.

It serves the realm file Keycloak imports (plus the demo users) at Keycloak's URLs with Keycloak's
JSON, on loopback only, with sessions in memory. See infra/idp/README.md.
"""

from pathlib import Path

from .app import RunningServer, create_app, start_in_thread
from .oauth import IdentityProvider
from .realm import RealmFileError, load_realm, realm_representation

__all__ = ["IdentityProvider", "RealmFileError", "RunningServer", "create_app",
           "default_realm_file", "load_realm", "realm_representation", "start_in_thread"]


def default_realm_file() -> Path:
    """The repository's realm file, found relative to this package (infra/idp/buendnis_idp)."""
    return Path(__file__).resolve().parents[2] / "keycloak" / "buendnis-realm.json"
