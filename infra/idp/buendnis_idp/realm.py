"""The realm file, read the way `kc.sh --import-realm` reads it, as the model Authlib works on.

Keycloak replaces `${VAR}` / `${VAR:default}` placeholders in the raw text of the file with
environment variables before it parses the JSON (`StringPropertyReplacer`); `replace_placeholders`
is a port of that algorithm, so both read the same secrets from the same file. `Client` is
Authlib's client model (`ClientMixin`) over the realm's client representation.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin

PropertyResolver = Callable[[str], "str | None"]


class RealmFileError(ValueError):
    """The realm file cannot be read or does not describe a usable realm."""


def environment_resolver(env: Mapping[str, str] | None = None) -> PropertyResolver:
    """Resolve a placeholder name from the environment, like Keycloak's `System.getenv`."""
    source = os.environ if env is None else env
    return lambda name: source.get(name)


def replace_placeholders(text: str, resolver: PropertyResolver, _depth: int = 0) -> str:
    """Port of Keycloak's `StringPropertyReplacer.replaceProperties`.

    `${p}` → the value of p, or unchanged when p is unknown; `${p:v}` → v when p is unknown;
    `${p1,p2:v}` → p1, else p2, else v; `${/}`, `${:}` → separators. Replaced values that hold
    `${` are replaced again.
    """
    if _depth > 32:
        raise RealmFileError("placeholders in the realm file refer to each other in a loop")
    out: list[str] = []
    replaced, state, start, depth = False, "normal", 0, 0
    for i, c in enumerate(text):
        if c == "$" and state != "bracket":
            state = "dollar"
        elif c == "{" and state == "dollar":
            out.append(text[start : i - 1])
            state, start, depth = "bracket", i - 1, 1
        elif c == "{" and state == "bracket":
            depth += 1
        elif state == "dollar":
            state = "normal"
        elif c == "}" and state == "bracket" and depth > 1:
            depth -= 1
        elif c == "}" and state == "bracket":
            key = text[start + 2 : i]
            value = _resolve_key(key, resolver) if key else None
            replaced = replaced or value is not None
            out.append(value if value is not None else "${" + key + "}")
            start, state = i + 1, "normal"
    if not replaced:
        return text
    result = "".join(out) + text[start:]
    return replace_placeholders(result, resolver, _depth + 1) if "${" in result else result


def _resolve_key(key: str, resolver: PropertyResolver) -> str | None:
    if key in ("/", ":"):
        return os.sep if key == "/" else os.pathsep
    value = resolver(key)
    if value is not None:
        return value
    name, colon, default = key.partition(":")
    if colon and name:
        value = resolver(name)
        value = _resolve_composite(name, resolver) if value is None else value
        return default if value is None else value
    return _resolve_composite(key, resolver)


def _resolve_composite(key: str, resolver: PropertyResolver) -> str | None:
    first, comma, second = key.partition(",")
    if not comma:
        return None
    value = resolver(first) if first else None
    return resolver(second) if value is None and second else value


def _true(rep: Mapping[str, Any], key: str, default: bool = False) -> bool:
    return bool(rep.get(key, default))


@dataclass(frozen=True)
class ClientScope:
    name: str
    include_in_token_scope: bool
    mappers: tuple[Mapping[str, Any], ...]  # protocol mapper representations

    @property
    def maps_organizations(self) -> bool:
        return any(m["protocolMapper"] == "oidc-organization-membership-mapper"
                   for m in self.mappers)


@dataclass(frozen=True)
class Client(ClientMixin):
    """A realm client, as Authlib asks about it (authentication, redirect URIs, grants)."""

    id: str
    client_id: str
    enabled: bool
    public: bool
    secret: str | None = field(repr=False)
    standard_flow: bool
    direct_access_grants: bool
    service_accounts: bool
    redirect_uris: tuple[str, ...]
    web_origins: tuple[str, ...]
    attributes: Mapping[str, str]
    mappers: tuple[Mapping[str, Any], ...]
    default_scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def check_secret(self, secret: str | None) -> bool:
        if self.public or self.secret is None or secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), secret.encode())

    check_client_secret = check_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Keycloak's `client-secret` authenticator: Basic or form; a public client sends no secret.
        return method == "none" if self.public else method != "none"

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        from .browser import verify_redirect_uri

        return verify_redirect_uri(redirect_uri, self.redirect_uris) is not None

    def get_default_redirect_uri(self) -> str | None:
        return None  # Keycloak needs the redirect_uri in every browser login

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""  # checked against the client scopes by the grant

    def check_response_type(self, response_type: str) -> bool:
        return self.standard_flow and response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return True  # Keycloak's per-grant rules and error texts are in oauth.GRANT_RULES


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str | None
    first_name: str | None
    last_name: str | None
    enabled: bool
    email_verified: bool
    realm_roles: tuple[str, ...]
    client_roles: Mapping[str, tuple[str, ...]]
    attributes: Mapping[str, tuple[str, ...]]
    passwords: tuple[str, ...]
    not_set_up: bool  # required actions or a temporary password: Keycloak would ask first
    service_account_client_id: str | None = None

    def check_password(self, password: str) -> bool:
        return any(hmac.compare_digest(p.encode(), password.encode()) for p in self.passwords)


@dataclass(frozen=True)
class Organization:
    id: str
    alias: str
    enabled: bool
    attributes: Mapping[str, tuple[str, ...]]
    members: tuple[str, ...]  # usernames, as Keycloak's import resolves members


@dataclass
class Realm:
    name: str
    enabled: bool
    access_token_lifespan: int
    sso_session_idle_timeout: int
    sso_session_max_lifespan: int
    access_code_lifespan: int
    access_code_lifespan_login: int
    revoke_refresh_token: bool
    organizations_enabled: bool
    login_with_email_allowed: bool
    client_scopes: Mapping[str, ClientScope]
    clients: Mapping[str, Client]
    users: Mapping[str, User]
    organizations: Mapping[str, Organization]
    _service_accounts: dict[str, User] = field(default_factory=dict, repr=False)

    def client(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id) if client_id else None

    def user_by_id(self, user_id: str | None) -> User | None:
        return self.users.get(user_id) if user_id else None

    def user_by_login(self, login: str) -> User | None:
        """Keycloak's login lookup: the username, or the e-mail address if the realm allows it."""
        key = login.strip().lower()
        for user in self.users.values():
            if user.username == key or (
                self.login_with_email_allowed and "@" in key and (user.email or "").lower() == key
            ):
                return user
        return None

    def service_account_user(self, client: Client) -> User | None:
        if not client.service_accounts:
            return None
        found = next((u for u in self.users.values()
                      if u.service_account_client_id == client.client_id), None)
        # Keycloak creates the service-account user on import when the file has none.
        return found or self._service_accounts.setdefault(client.client_id, User(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}/sa/{client.client_id}")),
            username=f"service-account-{client.client_id}", email=None, first_name=None,
            last_name=None, enabled=True, email_verified=False, realm_roles=(), client_roles={},
            attributes={}, passwords=(), not_set_up=False,
            service_account_client_id=client.client_id))

    def organizations_of(self, user: User) -> list[Organization]:
        return [o for o in self.organizations.values() if user.username in o.members]


#: The demo people (users and their organisation memberships), kept out of the realm file that
#: production imports; only this development provider and the local tools read them.
DEFAULT_DEMO_USERS_FILE = (
    Path(__file__).resolve().parents[2] / "keycloak" / "buendnis-realm-demo-users.json"
)


def demo_users_file(env: Mapping[str, str] | None = None) -> Path | None:
    """``IDP_DEMO_USERS_FILE``, else the repository's file; ``none`` for no demo users."""
    value = (os.environ if env is None else env).get("IDP_DEMO_USERS_FILE", "")
    if value.strip().lower() == "none":
        return None
    return Path(value) if value else DEFAULT_DEMO_USERS_FILE


def with_demo_users(rep: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """The realm with the overlay's users and organisation members added; a user the realm
    already has (same id or username) keeps the realm's definition."""
    def new(items: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = {u.get("id") for u in known} | {str(u.get("username", "")).lower() for u in known}
        return [u for u in items
                if u.get("id") not in seen and str(u.get("username", "")).lower() not in seen]

    users = list(rep.get("users") or [])
    members = {o["alias"]: o.get("members") or [] for o in overlay.get("organizations") or []}
    organizations = []
    for org in rep.get("organizations") or []:
        own = list(org.get("members") or [])
        organizations.append({**org, "members": own + new(members.get(org.get("alias"), []), own)})
    return {**rep, "users": users + new(overlay.get("users") or [], users),
            "organizations": organizations}


def _read_json(path: Path, what: str, env: Mapping[str, str] | None | bool) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RealmFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    resolver = environment_resolver(env if isinstance(env, Mapping) else None)
    text = raw if env is False else replace_placeholders(raw, resolver)
    try:
        rep = json.loads(text)
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
    """The realm file as JSON, with the demo users added (``demo_users=True``: the file of
    :func:`demo_users_file`; a path; or ``None``/``False`` for none). ``env=False`` leaves the
    ``${VAR:default}`` placeholders as they are written."""
    rep = _read_json(Path(path), "realm file", env)
    if demo_users is True:
        overlay_path = demo_users_file(env if isinstance(env, Mapping) else None)
    else:
        overlay_path = Path(demo_users) if demo_users else None
    if overlay_path is None:
        return rep
    overlay = _read_json(overlay_path, "demo users file", env)
    if overlay["realm"] != rep["realm"]:
        raise RealmFileError(f"demo users file {overlay_path} is for realm {overlay['realm']!r},"
                             f" not {rep['realm']!r}")
    return with_demo_users(rep, overlay)


def load_realm(
    path: str | Path, *, env: Mapping[str, str] | None = None,
    demo_users: str | Path | None | bool = True,
) -> Realm:
    """Read a realm file, resolving `${VAR:default}` placeholders from `env` (or os.environ),
    with the demo users of the development overlay (see :func:`realm_representation`)."""
    return realm_from_rep(realm_representation(path, demo_users=demo_users, env=env))


def realm_from_rep(rep: Mapping[str, Any]) -> Realm:
    scopes = {
        s["name"]: ClientScope(
            name=s["name"],
            include_in_token_scope=str((s.get("attributes") or {})
                                       .get("include.in.token.scope", "true")) == "true",
            mappers=tuple(_mapper(m) for m in s.get("protocolMappers") or []))
        for s in rep.get("clientScopes") or [] if s.get("protocol", "openid-connect")
        == "openid-connect"
    }
    defaults = tuple(rep.get("defaultDefaultClientScopes") or ())
    optionals = tuple(rep.get("defaultOptionalClientScopes") or ())
    clients = {c["clientId"]: _client(c, defaults, optionals) for c in rep.get("clients") or []}
    users = {u.id: u for u in (_user(r) for r in rep.get("users") or [])}
    organizations = {
        o["alias"]: Organization(
            id=o.get("id") or o["alias"], alias=o["alias"], enabled=o.get("enabled") is not False,
            attributes={k: tuple(v) for k, v in (o.get("attributes") or {}).items()},
            members=tuple(m["username"].lower() for m in o.get("members") or []
                          if m.get("username")))
        for o in rep.get("organizations") or []
    }
    return Realm(
        name=rep["realm"],
        enabled=rep.get("enabled", True) is not False,
        access_token_lifespan=int(rep.get("accessTokenLifespan") or 300),
        sso_session_idle_timeout=int(rep.get("ssoSessionIdleTimeout") or 1800),
        sso_session_max_lifespan=int(rep.get("ssoSessionMaxLifespan") or 36000),
        access_code_lifespan=int(rep.get("accessCodeLifespan") or 60),
        access_code_lifespan_login=int(rep.get("accessCodeLifespanLogin") or 1800),
        revoke_refresh_token=_true(rep, "revokeRefreshToken"),
        organizations_enabled=_true(rep, "organizationsEnabled"),
        login_with_email_allowed=_true(rep, "loginWithEmailAllowed", True),
        client_scopes=scopes, clients=clients, users=users, organizations=organizations,
    )


def _mapper(rep: Mapping[str, Any]) -> dict[str, Any]:
    config = {str(k): "" if v is None else str(v) for k, v in (rep.get("config") or {}).items()}
    return {"name": rep.get("name", ""), "protocolMapper": rep.get("protocolMapper", ""),
            "config": config}


def _client(rep: Mapping[str, Any], defaults: tuple[str, ...],
            optionals: tuple[str, ...]) -> Client:
    public = _true(rep, "publicClient")
    return Client(
        id=rep.get("id") or rep["clientId"], client_id=rep["clientId"],
        enabled=rep.get("enabled", True) is not False, public=public,
        secret=None if public else rep.get("secret"),
        standard_flow=_true(rep, "standardFlowEnabled", True),
        direct_access_grants=_true(rep, "directAccessGrantsEnabled"),
        service_accounts=_true(rep, "serviceAccountsEnabled"),
        redirect_uris=tuple(rep.get("redirectUris") or ()),
        web_origins=tuple(rep.get("webOrigins") or ()),
        attributes={k: str(v) for k, v in (rep.get("attributes") or {}).items()},
        mappers=tuple(_mapper(m) for m in rep.get("protocolMappers") or []),
        # Keycloak gives a client the realm's default scopes when the file names none.
        default_scopes=tuple(rep.get("defaultClientScopes", defaults)),
        optional_scopes=tuple(rep.get("optionalClientScopes", optionals)),
    )


def _user(rep: Mapping[str, Any]) -> User:
    passwords = [c for c in rep.get("credentials") or [] if c.get("type", "password") == "password"]
    return User(
        id=rep.get("id") or rep["username"], username=rep["username"].lower(),
        email=rep.get("email"), first_name=rep.get("firstName"), last_name=rep.get("lastName"),
        enabled=rep.get("enabled") is True,  # Keycloak's import: not "enabled": true is disabled
        email_verified=_true(rep, "emailVerified"),
        realm_roles=tuple(rep.get("realmRoles") or ()),
        client_roles={k: tuple(v) for k, v in (rep.get("clientRoles") or {}).items()},
        attributes={k: tuple(v) if isinstance(v, list) else (str(v),)
                    for k, v in (rep.get("attributes") or {}).items()},
        # Plain `value`s, as hand-written realm files have them (exported hashes are not read).
        passwords=tuple(str(c["value"]) for c in passwords if c.get("value") is not None),
        not_set_up=bool(rep.get("requiredActions")) or any(c.get("temporary") for c in passwords),
        service_account_client_id=rep.get("serviceAccountClientId"),
    )
