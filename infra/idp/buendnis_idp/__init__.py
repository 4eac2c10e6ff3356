"""Bündnis local identity provider: a Keycloak-compatible OIDC provider for development.

It reads the realm file that Keycloak imports (`infra/keycloak/buendnis-realm.json`), with the
demo users of `infra/keycloak/buendnis-realm-demo-users.json` (development only), and answers
Keycloak's URLs with Keycloak's JSON, so `python-keycloak` and OIDC client libraries work against
it unchanged. The OAuth protocol is Authlib's authorization server; ours is the realm mapping and
the login page. For local runs and tests only: it binds to loopback, its sessions are in memory.
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
