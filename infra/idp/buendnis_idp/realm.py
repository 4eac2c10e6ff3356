"""The realm file, read the way `kc.sh --import-realm` reads it, and its protocol mappers.

The realm file stays the source of truth: users, organisations and client scopes are kept as the
file's own JSON, `Client` is Authlib's client model over a client's JSON, and the realm's mappers
make the claims Keycloak 26 would issue for the same file.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError, UnauthorizedClientError

log = logging.getLogger(__name__)
Rep = dict[str, Any]  # a representation from the realm file
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
#: The demo people, kept out of the realm file that production imports.
DEFAULT_DEMO_USERS_FILE = (
    Path(__file__).resolve().parents[2] / "keycloak" / "buendnis-realm-demo-users.json")
ACCESS, ID, USERINFO = "access.token.claim", "id.token.claim", "userinfo.token.claim"


class RealmFileError(ValueError):
    """The realm file cannot be read or does not describe a usable realm."""


def replace_placeholders(text: str, resolver: Callable[[str], str | None]) -> str:
    """Keycloak's `StringPropertyReplacer`: `${p}` → p's value (unchanged if p is unknown),
    `${p:v}` → v if p is unknown, `${p1,p2:v}` → p1, else p2, else v; placeholders inside
    defaults or values are replaced too, innermost first."""
    def resolve(match: re.Match[str]) -> str:
        key = match.group(1)
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


class Client(ClientMixin):
    """A realm client as Authlib asks about it; `rep` is the client's JSON in the realm file."""

    def __init__(self, rep: Rep) -> None:
        self.rep, self.client_id, self.id = rep, rep["clientId"], rep.get("id") or rep["clientId"]
        self.public = bool(rep.get("publicClient"))
        self.attributes: dict[str, str] = rep.get("attributes") or {}
        self.redirect_uris: list[str] = rep.get("redirectUris") or []
        # Every client in the realm file names its scopes (Keycloak would add the realm's).
        self.default_scopes: list[str] = rep.get("defaultClientScopes") or []
        self.optional_scopes: list[str] = rep.get("optionalClientScopes") or []

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
        # Keycloak's checks of a client for each grant, with its texts.
        if grant_type == "password" and not self.flag("directAccessGrantsEnabled"):
            raise UnauthorizedClientError("Client not allowed for direct access grants")
        if grant_type == "client_credentials" and self.public:
            raise UnauthorizedClientError("Public client not allowed to retrieve service account")
        if grant_type == "client_credentials" and not self.flag("serviceAccountsEnabled"):
            raise UnauthorizedClientError("Client not enabled to retrieve service account")
        if grant_type == "authorization_code" and not self.flag("standardFlowEnabled", True):
            raise UnauthorizedClientError("Client not allowed to exchange code")
        return True

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""  # the client scopes are checked by resolve_scopes


class Realm:
    def __init__(self, rep: Rep) -> None:
        self.rep, self.name = rep, rep["realm"]
        self.organizations_enabled = bool(rep.get("organizationsEnabled"))
        self.clients = {c["clientId"]: Client(c) for c in rep.get("clients") or []}
        self.client_scopes: dict[str, Rep] = {
            s["name"]: s for s in rep.get("clientScopes") or []
            if s.get("protocol", "openid-connect") == "openid-connect"}
        # Keycloak's import: usernames are lower case, a user without "enabled": true is off.
        users = [{"id": u["username"].lower(), **u, "username": u["username"].lower(),
                  "enabled": u.get("enabled") is True} for u in rep.get("users") or []]
        self.users: dict[str, Rep] = {u["id"]: u for u in users}
        self.organizations: list[Rep] = rep.get("organizations") or []

    def setting(self, name: str, default: int) -> int:
        return int(self.rep.get(name) or default)

    def client(self, client_id: str | None) -> Client | None:
        return self.clients.get(client_id or "")

    def user_by_id(self, user_id: str | None) -> Rep | None:
        return self.users.get(user_id or "")

    def check_login(self, login: str, password: str) -> tuple[Rep | None, str | None]:
        """The user, and what stops the sign-in: "invalid" (also for a service account),
        "disabled", "not_set_up" (required actions or a temporary password), or None. The login
        is the username, or the e-mail address if the realm allows it; only plain `value`
        credentials are read (the realm file for production holds no passwords)."""
        key = login.strip().lower()
        by_email = "@" in key and self.rep.get("loginWithEmailAllowed", True) is not False
        user = next((u for u in self.users.values() if u["username"] == key or
                     (by_email and str(u.get("email", "")).lower() == key)), None)
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
        return next((u for u in self.users.values() if client.flag("serviceAccountsEnabled")
                     and u.get("serviceAccountClientId") == client.client_id), None)

    def resolve_scopes(self, client: Client, scope_param: str | None) -> tuple[list[Rep], bool]:
        """The client's default scopes plus the requested optional ones, and whether `openid`
        was asked for; Keycloak's invalid_scope for a scope the client has neither way."""
        active = [self.client_scopes[n] for n in client.default_scopes if n in self.client_scopes]
        for item in (scope_param or "").split():
            scope = self.client_scopes.get(item)
            if item == "openid" or scope in active:
                continue
            if scope is None or item not in client.default_scopes + client.optional_scopes:
                raise InvalidScopeError(f"Invalid scopes: {scope_param}")
            active.append(scope)
        return active, "openid" in (scope_param or "").split()


def realm_representation(path: str | Path, *, demo_users: str | Path | None | bool = True,
                         env: bool = True) -> dict[str, Any]:
    """The realm file as JSON, with the demo users and their memberships added: ``demo_users=True``
    reads the file ``IDP_DEMO_USERS_FILE`` names (default :data:`DEFAULT_DEMO_USERS_FILE`,
    ``none``: none); a path names it; ``None``/``False``: none. Placeholders are resolved from
    os.environ; ``env=False`` leaves them as they are written. A user the realm already has
    (same id or username) keeps the realm's definition."""
    def read(path: Path, what: str) -> Rep:
        try:
            text = path.read_text(encoding="utf-8")
            rep = json.loads(replace_placeholders(text, os.environ.get) if env else text)
        except OSError as exc:
            raise RealmFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise RealmFileError(f"{what} {path} is not valid JSON (line {exc.lineno}): "
                                 f"{exc.msg}") from exc
        if not isinstance(rep, dict) or not rep.get("realm"):
            raise RealmFileError(f"{what} {path} has no 'realm' name")
        return rep

    rep = read(Path(path), "realm file")
    if demo_users is True:
        value = os.environ.get("IDP_DEMO_USERS_FILE", "")
        demo_users = None if value.strip().lower() == "none" else value or DEFAULT_DEMO_USERS_FILE
    if not demo_users:
        return rep
    overlay = read(Path(demo_users), "demo users file")
    if overlay["realm"] != rep["realm"]:
        raise RealmFileError(f"demo users file {demo_users} is for realm {overlay['realm']!r},"
                             f" not {rep['realm']!r}")
    users = rep.get("users") or []
    known = {u.get("id") for u in users} | {str(u.get("username", "")).lower() for u in users}
    users += [u for u in overlay.get("users") or []  # the realm's own definition wins
              if u.get("id") not in known and str(u.get("username", "")).lower() not in known]
    members = {o["alias"]: o.get("members") or [] for o in overlay.get("organizations") or []}
    return {**rep, "users": users,
            "organizations": [{**o, "members": (o.get("members") or []) + members.get(
                o.get("alias"), [])} for o in rep.get("organizations") or []]}


def load_realm(path: str | Path, *, demo_users: str | Path | None | bool = True) -> Realm:
    """Read a realm file (see :func:`realm_representation`)."""
    return Realm(realm_representation(path, demo_users=demo_users))


# --- protocol mappers ---------------------------------------------------------------------------


@dataclass
class ClaimContext:
    realm: Realm
    client: Client
    user: Rep
    scopes: list[Rep]  # the active client scopes
    notes: Mapping[str, Any] = field(default_factory=dict)  # the user session's notes
    audiences: list[str] = field(default_factory=list)


def apply_mappers(kind: str, claims: dict[str, Any], ctx: ClaimContext) -> dict[str, Any]:
    """Run every mapper of the client and its active scopes that is switched on for `kind`."""
    for mapper in [*(ctx.client.rep.get("protocolMappers") or []),
                   *(m for s in ctx.scopes for m in s.get("protocolMappers") or [])]:
        config = mapper.get("config") or {}
        if config.get(kind) != "true":
            continue
        if (handler := _HANDLERS.get(mapper["protocolMapper"])) is None:
            log.warning("mapper type %s is not supported here; skipped", mapper["protocolMapper"])
        else:
            handler(claims, config, ctx)
    return claims


def _set_claim(claims: dict[str, Any], name: str, value: Any, client_id: str) -> None:
    """Keycloak's nested claim names: `realm_access.roles`."""
    *parents, last = name.replace("${client_id}", client_id).split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


def _map_values(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext,
                values: list[Any]) -> None:
    kind = config.get("jsonType.label", "String").lower()
    if kind in ("long", "int"):
        values = [int(v) for v in values if str(v).lstrip("-").isdigit()]
    elif kind == "boolean":
        values = [v if isinstance(v, bool) else str(v).lower() == "true" for v in values]
    if config.get("claim.name") and values:
        value = values if config.get("multivalued") == "true" else values[0]
        _set_claim(claims, config["claim.name"], value, ctx.client.client_id)


def _user_attribute(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    # Keycloak's user properties (username, email, firstName, emailVerified) are the names of
    # the user's fields in the realm file; anything else is a user attribute.
    name = config.get("user.attribute", "")
    value = ctx.user.get(name)
    values = (ctx.user.get("attributes") or {}).get(name, []) if value is None else value
    values = values if isinstance(values, list) else [values]
    _map_values(claims, config, ctx, [v for v in values if v not in (None, "")])


def _full_name(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    if name := " ".join(p for p in (ctx.user.get("firstName"), ctx.user.get("lastName")) if p):
        claims["name"] = name


def _session_note(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    if (note := ctx.notes.get(config.get("user.session.note", ""))) is not None:
        _map_values(claims, config, ctx, [note])


def _realm_roles(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    # The realm's roles are not composite: the user's roles are all there is to map.
    if roles := list(ctx.user.get("realmRoles") or []):
        _set_claim(claims, config.get("claim.name") or "realm_access.roles", roles,
                   ctx.client.client_id)


def _client_roles(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    for client_id, roles in (ctx.user.get("clientRoles") or {}).items():
        if roles:
            _set_claim(claims, config.get("claim.name") or "resource_access.${client_id}.roles",
                       list(roles), client_id)


def _audience(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    audience = config.get("included.client.audience") or config.get("included.custom.audience")
    if audience and audience not in ctx.audiences:
        ctx.audiences.append(audience)


def _audience_resolve(claims: dict[str, Any], config: Mapping[str, str],
                      ctx: ClaimContext) -> None:
    for client_id, roles in (ctx.user.get("clientRoles") or {}).items():
        if roles and client_id not in (ctx.client.client_id, *ctx.audiences):
            ctx.audiences.append(client_id)


def _allowed_origins(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    if origins := list(dict.fromkeys(ctx.client.rep.get("webOrigins") or [])):
        claims["allowed-origins"] = origins


def _organization(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    """Keycloak 26's Organization Membership mapper as the realm configures it (JSON, with id and
    attributes) for the user's single organisation (Keycloak would ask a user of several to pick
    one, which a token request cannot do)."""
    if not ctx.realm.organizations_enabled or ctx.user.get("serviceAccountClientId"):
        return
    memberships = [o for o in ctx.realm.organizations if o.get("enabled", True) is not False and
                   any(str(m.get("username", "")).lower() == ctx.user["username"]
                       for m in o.get("members") or [])]
    if len(memberships) == 1:
        value = {o["alias"]: {"id": o.get("id") or o["alias"], **(o.get("attributes") or {})}
                 for o in memberships}
        _set_claim(claims, config.get("claim.name") or "organization", value,
                   ctx.client.client_id)


_HANDLERS: dict[str, Callable[[dict[str, Any], Mapping[str, str], ClaimContext], None]] = {
    "oidc-sub-mapper": lambda claims, config, ctx: claims.update(sub=ctx.user["id"]),
    "oidc-usermodel-attribute-mapper": _user_attribute,
    "oidc-usermodel-property-mapper": _user_attribute,
    "oidc-full-name-mapper": _full_name,
    "oidc-usersessionmodel-note-mapper": _session_note,
    "oidc-usermodel-realm-role-mapper": _realm_roles,
    "oidc-usermodel-client-role-mapper": _client_roles,
    "oidc-audience-mapper": _audience,
    "oidc-audience-resolve-mapper": _audience_resolve,
    "oidc-allowed-origins-mapper": _allowed_origins,
    # Keycloak: acr "1" after a login with credentials, "0" when the SSO cookie signed one in.
    "oidc-acr-mapper": lambda claims, config, ctx: claims.update(
        acr=str(ctx.notes.get("ACR_LEVEL", "1"))),
    "oidc-organization-membership-mapper": _organization,
}
