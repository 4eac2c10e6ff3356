"""The realm file: Keycloak's realm export format, read the way `kc.sh --import-realm` reads it.

Keycloak replaces `${VAR}` / `${VAR:default}` placeholders in the raw text of the file with
environment variables before it parses the JSON (`AbstractFileBasedImportProvider` with
`StringPropertyReplacer`); `replace_placeholders` is a port of that algorithm so that both read
the same values from the same file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PropertyResolver = Callable[[str], "str | None"]

_NORMAL, _SEEN_DOLLAR, _IN_BRACKET = 0, 1, 2
_MAX_PLACEHOLDER_DEPTH = 32


class RealmFileError(ValueError):
    """The realm file cannot be read or does not describe a usable realm."""


def environment_resolver(env: Mapping[str, str] | None = None) -> PropertyResolver:
    """Resolve a placeholder name from the environment, like Keycloak's `System.getenv`."""
    source = os.environ if env is None else env
    return lambda name: source.get(name)


def replace_placeholders(text: str, resolver: PropertyResolver, _depth: int = 0) -> str:
    """Port of Keycloak's `StringPropertyReplacer.replaceProperties`.

    `${p}` → the value of p, or left unchanged when p is unknown; `${p:v}` → v when p is unknown;
    `${p1,p2}` / `${p1,p2:v}` → p1, else p2, else v; `${/}` and `${:}` → file and path separators.
    A replaced value that itself contains `${` is replaced again.
    """
    if _depth > _MAX_PLACEHOLDER_DEPTH:
        raise RealmFileError("placeholders in the realm file refer to each other in a loop")
    out: list[str] = []
    replaced = False
    state = _NORMAL
    start = 0
    open_brackets = 0
    for i, c in enumerate(text):
        if c == "$" and state != _IN_BRACKET:
            state = _SEEN_DOLLAR
        elif c == "{" and state == _SEEN_DOLLAR:
            out.append(text[start : i - 1])
            state = _IN_BRACKET
            start = i - 1
            open_brackets = 1
        elif c == "{" and state == _IN_BRACKET:
            open_brackets += 1
        elif state == _SEEN_DOLLAR:
            state = _NORMAL
        elif c == "}" and state == _IN_BRACKET and open_brackets > 1:
            open_brackets -= 1
        elif c == "}" and state == _IN_BRACKET:
            if start + 2 == i:
                out.append("${}")
            else:
                key = text[start + 2 : i]
                value = _resolve_key(key, resolver)
                if value is not None:
                    replaced = True
                    out.append(value)
                else:
                    out.append("${" + key + "}")
            start = i + 1
            state = _NORMAL
    if not replaced:
        return text
    if start != len(text):
        out.append(text[start:])
    result = "".join(out)
    if "${" in result:
        return replace_placeholders(result, resolver, _depth + 1)
    return result


def _resolve_key(key: str, resolver: PropertyResolver) -> str | None:
    if key == "/":
        return os.sep
    if key == ":":
        return os.pathsep
    value = resolver(key)
    if value is not None:
        return value
    colon = key.find(":")
    if colon > 0:
        real_key = key[:colon]
        value = resolver(real_key)
        if value is None:
            value = _resolve_composite(real_key, resolver)
        if value is None:
            value = key[colon + 1 :]
        return value
    return _resolve_composite(key, resolver)


def _resolve_composite(key: str, resolver: PropertyResolver) -> str | None:
    comma = key.find(",")
    if comma < 0:
        return None
    value = resolver(key[:comma]) if comma > 0 else None
    if value is None and comma < len(key) - 1:
        value = resolver(key[comma + 1 :])
    return value


@dataclass(frozen=True)
class ProtocolMapper:
    name: str
    protocol_mapper: str
    config: Mapping[str, str]

    @classmethod
    def from_rep(cls, rep: Mapping[str, Any]) -> ProtocolMapper:
        config = {str(k): "" if v is None else str(v) for k, v in (rep.get("config") or {}).items()}
        return cls(
            name=rep.get("name", ""), protocol_mapper=rep.get("protocolMapper", ""), config=config
        )


@dataclass(frozen=True)
class ClientScope:
    name: str
    protocol: str
    attributes: Mapping[str, str]
    mappers: tuple[ProtocolMapper, ...]

    @property
    def include_in_token_scope(self) -> bool:
        # Keycloak: a missing attribute means "true".
        return str(self.attributes.get("include.in.token.scope", "true")).lower() == "true"

    @property
    def maps_organizations(self) -> bool:
        return any(m.protocol_mapper == "oidc-organization-membership-mapper" for m in self.mappers)


@dataclass(frozen=True)
class Client:
    id: str
    client_id: str
    enabled: bool
    public: bool
    bearer_only: bool
    secret: str | None
    authenticator_type: str
    standard_flow: bool
    direct_access_grants: bool
    service_accounts: bool
    full_scope_allowed: bool
    redirect_uris: tuple[str, ...]
    web_origins: tuple[str, ...]
    attributes: Mapping[str, str]
    mappers: tuple[ProtocolMapper, ...]
    default_scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]

    @property
    def confidential(self) -> bool:
        return not self.public and not self.bearer_only

    def check_secret(self, secret: str | None) -> bool:
        if not self.confidential or self.secret is None or secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), secret.encode())


@dataclass(frozen=True)
class Credential:
    type: str
    temporary: bool
    value: str | None = None
    algorithm: str | None = None
    iterations: int | None = None
    salt: bytes | None = None
    hashed: bytes | None = None


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
    credentials: tuple[Credential, ...]
    required_actions: tuple[str, ...]
    service_account_client_id: str | None

    @property
    def is_service_account(self) -> bool:
        return self.service_account_client_id is not None


@dataclass(frozen=True)
class Organization:
    id: str
    alias: str
    name: str
    enabled: bool
    attributes: Mapping[str, tuple[str, ...]]
    domains: tuple[str, ...]
    members: tuple[str, ...]  # usernames, as Keycloak's import resolves members by username


@dataclass
class Realm:
    name: str
    enabled: bool
    access_token_lifespan: int
    sso_session_idle_timeout: int
    sso_session_max_lifespan: int
    revoke_refresh_token: bool
    organizations_enabled: bool
    login_with_email_allowed: bool
    realm_roles: Mapping[str, Mapping[str, Any]]
    client_scopes: Mapping[str, ClientScope]
    clients: Mapping[str, Client]
    users: Mapping[str, User]
    organizations: Mapping[str, Organization]
    scope_mappings: tuple[Mapping[str, Any], ...] = ()
    access_code_lifespan: int = 60
    access_code_lifespan_login: int = 1800
    _by_username: dict[str, User] = field(default_factory=dict, repr=False)
    _by_email: dict[str, User] = field(default_factory=dict, repr=False)
    _service_accounts: dict[str, User] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for user in self.users.values():
            self._by_username[user.username.lower()] = user
            if user.email:
                self._by_email.setdefault(user.email.lower(), user)
            if user.service_account_client_id:
                self._service_accounts[user.service_account_client_id] = user

    def client(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id) if client_id else None

    def user_by_id(self, user_id: str | None) -> User | None:
        return self.users.get(user_id) if user_id else None

    def user_by_login(self, login: str) -> User | None:
        """Look a user up the way Keycloak's login does: username, or e-mail if allowed."""
        key = login.strip().lower()
        user = self._by_username.get(key)
        if user is None and self.login_with_email_allowed and "@" in key:
            user = self._by_email.get(key)
        return user

    def service_account_user(self, client: Client) -> User | None:
        user = self._service_accounts.get(client.client_id)
        if user is None and client.service_accounts:
            # Keycloak creates the service-account user on import when the file has none.
            user = User(
                id=str(
                    uuid.uuid5(
                        uuid.NAMESPACE_URL, f"{self.name}/service-account/{client.client_id}"
                    )
                ),
                username=f"service-account-{client.client_id}",
                email=None,
                first_name=None,
                last_name=None,
                enabled=True,
                email_verified=False,
                realm_roles=(),
                client_roles={},
                attributes={},
                credentials=(),
                required_actions=(),
                service_account_client_id=client.client_id,
            )
            self._service_accounts[client.client_id] = user
        return user

    def effective_realm_roles(self, user: User, client: Client | None = None) -> list[str]:
        """The user's realm roles with composites expanded, limited by the client's role scope."""
        seen: list[str] = []
        stack = list(reversed(user.realm_roles))
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.append(name)
            rep = self.realm_roles.get(name) or {}
            composites = (rep.get("composites") or {}).get("realm") or []
            stack.extend(reversed([c for c in composites if isinstance(c, str)]))
        if client is not None and not client.full_scope_allowed:
            allowed = self._scoped_realm_roles(client)
            seen = [r for r in seen if r in allowed]
        return seen

    def _scoped_realm_roles(self, client: Client) -> set[str]:
        allowed: set[str] = set()
        for mapping in self.scope_mappings:
            if mapping.get("client") == client.client_id:
                allowed.update(mapping.get("roles") or [])
        return allowed

    def organizations_of(self, user: User) -> list[Organization]:
        return [org for org in self.organizations.values() if user.username in org.members]

    def client_scope(self, name: str) -> ClientScope | None:
        return self.client_scopes.get(name)


def verify_password(user: User, password: str) -> bool:
    """Check a password against the user's stored password credential.

    Supports the realm-file forms: a plain `value` (what hand-written realm files use) and
    Keycloak's exported pbkdf2 hashes in `secretData`/`credentialData`.
    """
    for cred in user.credentials:
        if cred.type != "password":
            continue
        if cred.value is not None:
            if hmac.compare_digest(cred.value.encode(), password.encode()):
                return True
            continue
        if cred.hashed is not None and cred.salt is not None and cred.algorithm:
            digest = _PBKDF2.get(cred.algorithm)
            if digest is None:
                continue
            candidate = hashlib.pbkdf2_hmac(
                digest,
                password.encode(),
                cred.salt,
                cred.iterations or 27500,
                dklen=len(cred.hashed),
            )
            if hmac.compare_digest(candidate, cred.hashed):
                return True
    return False


_PBKDF2 = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}


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
    merged = dict(rep)
    users = list(rep.get("users") or [])
    known = {u.get("id") for u in users} | {str(u.get("username", "")).lower() for u in users}
    users += [
        u for u in overlay.get("users") or []
        if u.get("id") not in known and str(u.get("username", "")).lower() not in known
    ]
    merged["users"] = users
    extra_members = {o["alias"]: o.get("members") or [] for o in overlay.get("organizations") or []}
    organizations = []
    for org in rep.get("organizations") or []:
        org = dict(org)
        members = list(org.get("members") or [])
        names = {str(m.get("username", "")).lower() for m in members}
        members += [m for m in extra_members.get(org.get("alias"), [])
                    if str(m.get("username", "")).lower() not in names]
        org["members"] = members
        organizations.append(org)
    merged["organizations"] = organizations
    return merged


def _read_json(path: Path, what: str, env: Mapping[str, str] | None) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RealmFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    text = raw if env is False else replace_placeholders(raw, environment_resolver(env))
    try:
        rep = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RealmFileError(
            f"{what} {path} is not valid JSON (line {exc.lineno}): {exc.msg}"
        ) from exc
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
    overlay_path = demo_users_file(None if env is False else env) if demo_users is True else (
        Path(demo_users) if demo_users else None
    )
    if overlay_path is None:
        return rep
    overlay = _read_json(overlay_path, "demo users file", env)
    if overlay["realm"] != rep["realm"]:
        raise RealmFileError(
            f"demo users file {overlay_path} is for realm {overlay['realm']!r},"
            f" not {rep['realm']!r}"
        )
    return with_demo_users(rep, overlay)


def load_realm(
    path: str | Path, *, env: Mapping[str, str] | None = None,
    demo_users: str | Path | None | bool = True,
) -> Realm:
    """Read a realm file, resolving `${VAR:default}` placeholders from `env` (or os.environ),
    with the demo users of the development overlay (see :func:`realm_representation`)."""
    return realm_from_rep(realm_representation(path, demo_users=demo_users, env=env))


def realm_from_rep(rep: Mapping[str, Any]) -> Realm:
    scopes = {}
    for scope_rep in rep.get("clientScopes") or []:
        scope = ClientScope(
            name=scope_rep["name"],
            protocol=scope_rep.get("protocol", "openid-connect"),
            attributes={k: str(v) for k, v in (scope_rep.get("attributes") or {}).items()},
            mappers=tuple(
                ProtocolMapper.from_rep(m) for m in scope_rep.get("protocolMappers") or []
            ),
        )
        scopes[scope.name] = scope

    default_scopes = tuple(rep.get("defaultDefaultClientScopes") or ())
    optional_scopes = tuple(rep.get("defaultOptionalClientScopes") or ())
    clients = {}
    for client_rep in rep.get("clients") or []:
        client = _client_from_rep(client_rep, default_scopes, optional_scopes)
        clients[client.client_id] = client

    users = {}
    for user_rep in rep.get("users") or []:
        user = _user_from_rep(user_rep)
        if user.id in users:
            raise RealmFileError(f"duplicate user id {user.id}")
        users[user.id] = user

    organizations = {}
    for org_rep in rep.get("organizations") or []:
        org = Organization(
            id=org_rep.get("id") or org_rep["alias"],
            alias=org_rep["alias"],
            name=org_rep.get("name") or org_rep["alias"],
            enabled=org_rep.get("enabled", True) is not False,
            attributes={k: tuple(v) for k, v in (org_rep.get("attributes") or {}).items()},
            domains=tuple(d["name"] for d in org_rep.get("domains") or [] if d.get("name")),
            members=tuple(
                m["username"].lower() for m in org_rep.get("members") or [] if m.get("username")
            ),
        )
        organizations[org.alias] = org

    realm_roles = {
        r["name"]: r for r in (rep.get("roles") or {}).get("realm") or [] if r.get("name")
    }
    realm = Realm(
        name=rep["realm"],
        enabled=rep.get("enabled", True) is not False,
        access_token_lifespan=int(rep.get("accessTokenLifespan") or 300),
        sso_session_idle_timeout=int(rep.get("ssoSessionIdleTimeout") or 1800),
        sso_session_max_lifespan=int(rep.get("ssoSessionMaxLifespan") or 36000),
        revoke_refresh_token=bool(rep.get("revokeRefreshToken", False)),
        organizations_enabled=bool(rep.get("organizationsEnabled", False)),
        login_with_email_allowed=rep.get("loginWithEmailAllowed", True) is not False,
        realm_roles=realm_roles,
        client_scopes=scopes,
        clients=clients,
        users=users,
        organizations=organizations,
        scope_mappings=tuple(rep.get("scopeMappings") or ()),
        access_code_lifespan=int(rep.get("accessCodeLifespan") or 60),
        access_code_lifespan_login=int(rep.get("accessCodeLifespanLogin") or 1800),
    )
    _warn_about_inconsistencies(realm)
    return realm


def _client_from_rep(
    rep: Mapping[str, Any], default_scopes: tuple[str, ...], optional_scopes: tuple[str, ...]
) -> Client:
    public = bool(rep.get("publicClient", False))
    defaults = rep.get("defaultClientScopes")
    optionals = rep.get("optionalClientScopes")
    return Client(
        id=rep.get("id") or rep["clientId"],
        client_id=rep["clientId"],
        enabled=rep.get("enabled", True) is not False,
        public=public,
        bearer_only=bool(rep.get("bearerOnly", False)),
        secret=None if public else rep.get("secret"),
        authenticator_type=rep.get("clientAuthenticatorType", "client-secret"),
        standard_flow=rep.get("standardFlowEnabled", True) is not False,
        direct_access_grants=bool(rep.get("directAccessGrantsEnabled", False)),
        service_accounts=bool(rep.get("serviceAccountsEnabled", False)),
        full_scope_allowed=rep.get("fullScopeAllowed", True) is not False,
        redirect_uris=tuple(rep.get("redirectUris") or ()),
        web_origins=tuple(rep.get("webOrigins") or ()),
        attributes={k: str(v) for k, v in (rep.get("attributes") or {}).items()},
        mappers=tuple(ProtocolMapper.from_rep(m) for m in rep.get("protocolMappers") or []),
        # Keycloak gives a client the realm's default scopes when the file names none.
        default_scopes=tuple(defaults) if defaults is not None else default_scopes,
        optional_scopes=tuple(optionals) if optionals is not None else optional_scopes,
    )


def _user_from_rep(rep: Mapping[str, Any]) -> User:
    return User(
        id=rep.get("id") or rep["username"],
        username=rep["username"].lower(),
        email=rep.get("email"),
        first_name=rep.get("firstName"),
        last_name=rep.get("lastName"),
        # Keycloak's import: a user without "enabled": true is disabled.
        enabled=rep.get("enabled") is True,
        email_verified=bool(rep.get("emailVerified", False)),
        realm_roles=tuple(rep.get("realmRoles") or ()),
        client_roles={k: tuple(v) for k, v in (rep.get("clientRoles") or {}).items()},
        attributes={
            k: tuple(v) if isinstance(v, list) else (str(v),)
            for k, v in (rep.get("attributes") or {}).items()
        },
        credentials=tuple(_credential_from_rep(c) for c in rep.get("credentials") or []),
        required_actions=tuple(rep.get("requiredActions") or ()),
        service_account_client_id=rep.get("serviceAccountClientId"),
    )


def _credential_from_rep(rep: Mapping[str, Any]) -> Credential:
    cred_type = rep.get("type", "password")
    temporary = bool(rep.get("temporary", False))
    if rep.get("value") is not None:
        return Credential(type=cred_type, temporary=temporary, value=str(rep["value"]))
    try:
        secret = json.loads(rep.get("secretData") or "{}")
        data = json.loads(rep.get("credentialData") or "{}")
        return Credential(
            type=cred_type,
            temporary=temporary,
            algorithm=data.get("algorithm"),
            iterations=data.get("hashIterations"),
            salt=base64.b64decode(secret["salt"]) if secret.get("salt") else None,
            hashed=base64.b64decode(secret["value"]) if secret.get("value") else None,
        )
    except (ValueError, TypeError):
        return Credential(type=cred_type, temporary=temporary)


def _warn_about_inconsistencies(realm: Realm) -> None:
    usernames = {u.username for u in realm.users.values()}
    for org in realm.organizations.values():
        for member in org.members:
            if member not in usernames:
                log.warning("organisation %s lists unknown member %s", org.alias, member)
    for client in realm.clients.values():
        for name in _all(client.default_scopes, client.optional_scopes):
            if name not in realm.client_scopes:
                log.warning("client %s refers to unknown client scope %s", client.client_id, name)
        if client.confidential and not client.secret:
            log.warning(
                "confidential client %s has no secret; it cannot authenticate", client.client_id
            )


def _all(*groups: Iterable[str]) -> Iterable[str]:
    for group in groups:
        yield from group
