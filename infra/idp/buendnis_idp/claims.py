"""Protocol mappers: how the realm file's mappers turn a user, a client and its scopes into claims.

This is our domain rather than OAuth: the realm's client scopes decide which mappers run, and
each mapper type a Keycloak 26 realm uses follows Keycloak closely enough that a token from here
and one from Keycloak carry the same claims for the same file (roles in `realm_access`, the
organisation with its id and attributes, the API audience).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import InvalidScopeError

from .realm import Client, Realm, Rep

log = logging.getLogger(__name__)

ACCESS, ID, USERINFO = "access.token.claim", "id.token.claim", "userinfo.token.claim"
ORGANIZATION_MAPPER = "oidc-organization-membership-mapper"


@dataclass
class ClaimContext:
    realm: Realm
    client: Client
    user: Rep
    scopes: list[Rep]  # the active client scopes
    requested_scope: str = ""
    notes: Mapping[str, Any] = field(default_factory=dict)  # the user session's notes
    audiences: list[str] = field(default_factory=list)


def maps_organizations(scope: Rep) -> bool:
    return any(m.get("protocolMapper") == ORGANIZATION_MAPPER
               for m in scope.get("protocolMappers") or [])


def resolve_client_scopes(realm: Realm, client: Client, scope_param: str | None
                          ) -> tuple[list[Rep], bool]:
    """The client's default scopes plus the requested optional ones, and whether `openid` was
    asked for; Keycloak's invalid_scope error for a scope the client has neither way."""
    active = [realm.client_scopes[n] for n in client.default_scopes if n in realm.client_scopes]
    for item in (scope_param or "").split():
        base, dynamic, _ = item.partition(":")
        scope = realm.client_scopes.get(base)
        if item == "openid" or (scope in active and not dynamic):
            continue
        # Only the organization scope takes a value ("organization:<alias>", "organization:*").
        if scope is None or base not in client.default_scopes + client.optional_scopes or (
                dynamic and not maps_organizations(scope)):
            raise InvalidScopeError(f"Invalid scopes: {scope_param}")
        active += [] if scope in active else [scope]
    return active, "openid" in (scope_param or "").split()


def token_scope_string(scopes: list[Rep], openid: bool) -> str:
    names = sorted(s["name"] for s in scopes
                   if (s.get("attributes") or {}).get("include.in.token.scope", "true") == "true")
    return " ".join((["openid"] if openid else []) + names)


def apply_mappers(kind: str, claims: dict[str, Any], ctx: ClaimContext) -> dict[str, Any]:
    """Run every mapper of the client and its active scopes that is switched on for `kind`."""
    mappers = [*(ctx.client.rep.get("protocolMappers") or []),
               *(m for s in ctx.scopes for m in s.get("protocolMappers") or [])]
    for mapper in mappers:
        config = mapper.get("config") or {}
        if config.get(kind) != "true":
            continue
        if (handler := _HANDLERS.get(mapper["protocolMapper"])) is None:
            log.warning("mapper type %s is not supported here; skipped", mapper["protocolMapper"])
        else:
            handler(claims, config, ctx)
    return claims


def _set_claim(claims: dict[str, Any], name: str, value: Any, client_id: str) -> None:
    """Keycloak's nested claim names: `realm_access.roles`; `\\.` is a literal dot."""
    *parents, last = [p.replace("\\.", ".") for p in
                      re.split(r"(?<!\\)\.", name.replace("${client_id}", client_id))]
    for part in parents:
        if not isinstance(claims.get(part), dict):
            claims[part] = {}
        claims = claims[part]
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
    composites = {r["name"]: (r.get("composites") or {}).get("realm") or []
                  for r in (ctx.realm.rep.get("roles") or {}).get("realm") or []}
    roles = list(ctx.user.get("realmRoles") or [])
    for role in roles:  # the user's roles, then the roles of its composite roles
        roles += [r for r in composites.get(role, []) if r not in roles]
    prefix = config.get("usermodel.realmRoleMapping.rolePrefix", "")
    if roles := [prefix + r for r in roles]:
        _set_claim(claims, config.get("claim.name") or "realm_access.roles",
                   roles if config.get("multivalued", "true") == "true" else roles[0],
                   ctx.client.client_id)


def _client_roles(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    only = config.get("usermodel.clientRoleMapping.clientId")
    for client_id, roles in (ctx.user.get("clientRoles") or {}).items():
        if roles and only in (None, "", client_id):
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
    origins: list[str] = []
    for origin in ctx.client.rep.get("webOrigins") or []:  # "+": the redirect URIs' origins
        parts = [urlsplit(u) for u in ctx.client.redirect_uris] if origin == "+" else []
        origins += [f"{p.scheme}://{p.netloc}" for p in parts if p.netloc] if parts else [origin]
    if origins:
        claims["allowed-origins"] = list(dict.fromkeys(origins))


def _organization(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    """Keycloak 26's Organization Membership mapper, for an active scope that holds it:
    `organization` maps the user's single organisation, `organization:<alias>` that one,
    `organization:*` all of them."""
    names = {s["name"] for s in ctx.scopes if maps_organizations(s)}
    if not ctx.realm.organizations_enabled or ctx.user.get("serviceAccountClientId") or not names:
        return
    memberships = ctx.realm.organizations_of(ctx.user)
    # The plain scope maps the user's organisation when there is exactly one; Keycloak would ask
    # the user to pick one in a browser login, which a token request cannot do.
    chosen = memberships if len(memberships) == 1 else []
    for name, _, value in (item.partition(":") for item in ctx.requested_scope.split()):
        if name in names and value:
            chosen = [o for o in memberships if value in ("*", o["alias"])]
            break
    if not chosen:
        return
    multivalued = config.get("multivalued", "true") == "true"
    add_id = multivalued and config.get("addOrganizationId") == "true"
    add_attributes = multivalued and config.get("addOrganizationAttributes") == "true"
    if not multivalued:
        value: Any = chosen[0]["alias"]
    elif add_id or add_attributes or config.get("jsonType.label") == "JSON":
        value = {o["alias"]: {**({"id": o.get("id") or o["alias"]} if add_id else {}),
                              **((o.get("attributes") or {}) if add_attributes else {})}
                 for o in chosen}
    else:
        value = [o["alias"] for o in chosen]
    _set_claim(claims, config.get("claim.name") or "organization", value, ctx.client.client_id)


def _acr(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    # Keycloak: "1" after a login with credentials, "0" when the SSO cookie signed the user in.
    claims["acr"] = str(ctx.notes.get("ACR_LEVEL", "1"))


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
    "oidc-acr-mapper": _acr,
    ORGANIZATION_MAPPER: _organization,
}
