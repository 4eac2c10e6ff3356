"""The realm file, read the way `kc.sh --import-realm` reads it, as the model Authlib works on.

The realm file stays the source of truth: users, organisations and client scopes are kept as
the file's own JSON (Keycloak's names: `firstName`, `realmRoles`, `protocolMappers`), and
`Client` is Authlib's client model over a client's JSON. Keycloak replaces `${VAR}` and
`${VAR:default}` placeholders in the raw text with environment variables before it parses it;
`replace_placeholders` does the same, so both read the same secrets from the same file.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import UnauthorizedClientError

Rep = dict[str, Any]  # a representation from the realm file
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")


class RealmFileError(ValueError):
    """The realm file cannot be read or does not describe a usable realm."""


def replace_placeholders(text: str, resolver: Callable[[str], str | None]) -> str:
    """Keycloak's `StringPropertyReplacer`: `${p}` → p's value (unchanged if p is unknown),
    `${p:v}` → v if p is unknown, `${p1,p2:v}` → p1, else p2, else v; `${/}` and `${:}` are the
    separators; placeholders inside defaults or values are replaced too, innermost first."""
    def resolve(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in ("/", ":"):
            return os.sep if key == "/" else os.pathsep
        names, colon, default = key.partition(":") if key else ("", "", "")
        for name in [key, *names.split(",", 1)] if names else []:
            if name and (value := resolver(name)) is not None:
                return value
        return default if colon and names else match.group(0)

    for _ in range(32):
        replaced = _PLACEHOLDER.sub(resolve, text)
        if replaced == text:
            return text
        text = replaced
    raise RealmFileError("placeholders in the realm file refer to each other in a loop")


#: Keycloak's checks of a client for each grant: (allowed?, error text).
GRANT_RULES: dict[str, list[tuple[Callable[[Client], bool], str]]] = {
    "password": [(lambda c: c.flag("directAccessGrantsEnabled"),
                  "Client not allowed for direct access grants")],
    "client_credentials": [
        (lambda c: not c.public, "Public client not allowed to retrieve service account"),
        (lambda c: c.flag("serviceAccountsEnabled"),
         "Client not enabled to retrieve service account")],
    "authorization_code": [(lambda c: c.flag("standardFlowEnabled", True),
                            "Client not allowed to exchange code")],
}


class Client(ClientMixin):
    """A realm client as Authlib asks about it; `rep` is the client's JSON in the realm file."""

    def __init__(self, rep: Rep, realm_rep: Rep) -> None:
        self.rep, self.client_id, self.id = rep, rep["clientId"], rep.get("id") or rep["clientId"]
        self.public = bool(rep.get("publicClient"))
        self.attributes: dict[str, str] = rep.get("attributes") or {}
        self.redirect_uris: list[str] = rep.get("redirectUris") or []
        # Keycloak gives a client the realm's default scopes when the file names none.
        self.default_scopes: list[str] = rep.get(
            "defaultClientScopes", realm_rep.get("defaultDefaultClientScopes") or [])
        self.optional_scopes: list[str] = rep.get(
            "optionalClientScopes", realm_rep.get("defaultOptionalClientScopes") or [])

    def flag(self, name: str, default: bool = False) -> bool:
        return bool(self.rep.get(name, default))

    def get_client_id(self) -> str:
        return self.client_id

    def check_secret(self, secret: str | None) -> bool:
        expected = None if self.public else self.rep.get("secret")
        return expected is not None and secret is not None and \
            hmac.compare_digest(expected.encode(), secret.encode())

    check_client_secret = check_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Keycloak's `client-secret` authenticator: Basic or form; a public client sends no secret.
        return (method == "none") == self.public

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        from .browser import verify_redirect_uri

        return verify_redirect_uri(redirect_uri, self.redirect_uris) is not None

    def check_response_type(self, response_type: str) -> bool:
        return self.flag("standardFlowEnabled", True) and response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        for allowed, text in GRANT_RULES.get(grant_type, []):  # with Keycloak's texts
            if not allowed(self):
                raise UnauthorizedClientError(text)
        return True

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""  # the client scopes are checked by the grant


class Realm:
    def __init__(self, rep: Rep) -> None:
        self.rep, self.name = rep, rep["realm"]
        self.enabled = rep.get("enabled", True) is not False
        self.organizations_enabled = bool(rep.get("organizationsEnabled"))
        self.clients = {c["clientId"]: Client(c, rep) for c in rep.get("clients") or []}
        self.client_scopes: dict[str, Rep] = {
            s["name"]: s for s in rep.get("clientScopes") or []
            if s.get("protocol", "openid-connect") == "openid-connect"}
        # Keycloak's import: usernames are lower case, a user without "enabled": true is off.
        users = [{"id": u["username"].lower(), **u, "username": u["username"].lower(),
                  "enabled": u.get("enabled") is True} for u in rep.get("users") or []]
        self.users: dict[str, Rep] = {u["id"]: u for u in users}
        self.organizations: list[Rep] = rep.get("organizations") or []
        self._service_accounts: dict[str, Rep] = {}

    def setting(self, name: str, default: int) -> int:
        return int(self.rep.get(name) or default)

    def client(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id or "")

    def user_by_id(self, user_id: str | None) -> Rep | None:
        return self.users.get(user_id or "")

    def user_by_login(self, login: str) -> Rep | None:
        """Keycloak's login lookup: the username, or the e-mail address if the realm allows it."""
        key = login.strip().lower()
        by_email = "@" in key and self.rep.get("loginWithEmailAllowed", True) is not False
        return next((u for u in self.users.values() if u["username"] == key or
                     (by_email and str(u.get("email", "")).lower() == key)), None)

    def check_login(self, login: str, password: str) -> tuple[Rep | None, str | None]:
        """The user, and what stops the sign-in: "invalid" (also for a service account),
        "disabled", "not_set_up" (required actions or a temporary password, which Keycloak would
        ask for first), or None. Only plain `value` credentials are read, as hand-written realm
        files have them (the realm file for production holds no passwords)."""
        user = self.user_by_login(login)
        credentials = (user or {}).get("credentials") or []
        if user is None or user.get("serviceAccountClientId") or not any(
                c.get("value") is not None and c.get("type", "password") == "password" and
                hmac.compare_digest(str(c["value"]).encode(), password.encode())
                for c in credentials):
            return None, "invalid"
        if not user["enabled"]:
            return user, "disabled"
        not_set_up = user.get("requiredActions") or any(c.get("temporary") for c in credentials)
        return user, "not_set_up" if not_set_up else None

    def service_account_user(self, client: Client) -> Rep | None:
        if not client.flag("serviceAccountsEnabled"):
            return None
        found = next((u for u in self.users.values()
                      if u.get("serviceAccountClientId") == client.client_id), None)
        # Keycloak creates the service-account user on import when the file has none.
        return found or self._service_accounts.setdefault(client.client_id, {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}/sa/{client.client_id}")),
            "username": f"service-account-{client.client_id}", "enabled": True,
            "serviceAccountClientId": client.client_id})

    def organizations_of(self, user: Rep) -> list[Rep]:
        return [o for o in self.organizations if o.get("enabled", True) is not False and any(
            str(m.get("username", "")).lower() == user["username"] for m in o.get("members") or [])]


#: The demo people (users and their organisation memberships), kept out of the realm file that
#: production imports; only this development provider and the local tools read them.
DEFAULT_DEMO_USERS_FILE = (
    Path(__file__).resolve().parents[2] / "keycloak" / "buendnis-realm-demo-users.json")


def with_demo_users(rep: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """The realm with the overlay's users and organisation members added; a user the realm
    already has (same id or username) keeps the realm's definition."""
    def new(items: list[Rep], known: list[Rep]) -> list[Rep]:
        seen = {u.get("id") for u in known} | {str(u.get("username", "")).lower() for u in known}
        return [u for u in items
                if u.get("id") not in seen and str(u.get("username", "")).lower() not in seen]

    users = list(rep.get("users") or [])
    members = {o["alias"]: o.get("members") or [] for o in overlay.get("organizations") or []}
    organizations = [{**o, "members": (o.get("members") or []) + new(
        members.get(o.get("alias"), []), o.get("members") or [])}
        for o in rep.get("organizations") or []]
    return {**rep, "users": users + new(overlay.get("users") or [], users),
            "organizations": organizations}


def _read_json(path: Path, what: str, env: Mapping[str, str] | None) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        rep = json.loads(text if env is None else replace_placeholders(text, env.get))
    except OSError as exc:
        raise RealmFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise RealmFileError(f"{what} {path} is not valid JSON (line {exc.lineno}): {exc.msg}") \
            from exc
    if not isinstance(rep, dict) or not rep.get("realm"):
        raise RealmFileError(f"{what} {path} has no 'realm' name")
    return rep


def realm_representation(
    path: str | Path, *, demo_users: str | Path | None | bool = True,
    env: Mapping[str, str] | None | bool = None,
) -> dict[str, Any]:
    """The realm file as JSON, with the demo users added: ``demo_users=True`` reads the file
    ``IDP_DEMO_USERS_FILE`` names (default :data:`DEFAULT_DEMO_USERS_FILE`, ``none``: none);
    a path names it; ``None``/``False``: none. Placeholders are resolved from ``env`` (default
    os.environ); ``env=False`` leaves them as they are written."""
    source = env if isinstance(env, Mapping) else os.environ
    rep = _read_json(Path(path), "realm file", None if env is False else source)
    if demo_users is True:
        value = source.get("IDP_DEMO_USERS_FILE", "")
        demo_users = None if value.strip().lower() == "none" else value or DEFAULT_DEMO_USERS_FILE
    if not demo_users:
        return rep
    overlay = _read_json(Path(demo_users), "demo users file", None if env is False else source)
    if overlay["realm"] != rep["realm"]:
        raise RealmFileError(f"demo users file {demo_users} is for realm {overlay['realm']!r},"
                             f" not {rep['realm']!r}")
    return with_demo_users(rep, overlay)


def load_realm(path: str | Path, *, env: Mapping[str, str] | None = None,
               demo_users: str | Path | None | bool = True) -> Realm:
    """Read a realm file (see :func:`realm_representation`)."""
    return Realm(realm_representation(path, demo_users=demo_users, env=env))
