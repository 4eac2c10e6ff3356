"""Protocol mappers: how the realm file's mappers turn a user, a client and its scopes into claims.

This is the part of the provider that is our domain rather than OAuth: the realm's client scopes
decide which mappers run, and each mapper type used by a Keycloak 26 realm is followed closely
enough that a token from here and one from Keycloak carry the same claims for the same file
(roles in `realm_access`, the organisation with its id and attributes, the API audience).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .realm import Client, ClientScope, Organization, Realm, User

log = logging.getLogger(__name__)

ACCESS, ID, USERINFO = "access.token.claim", "id.token.claim", "userinfo.token.claim"


class InvalidScope(Exception):
    """The client asked for a scope it may not have."""


@dataclass
class ClaimContext:
    realm: Realm
    client: Client
    user: User
    scopes: Sequence[ClientScope]
    requested_scope: str = ""
    session_notes: Mapping[str, Any] = field(default_factory=dict)
    audiences: list[str] = field(default_factory=list)


def resolve_client_scopes(
    realm: Realm, client: Client, scope_param: str | None
) -> tuple[list[ClientScope], bool]:
    """The client's default scopes plus the requested optional ones, and whether `openid` was
    asked for; InvalidScope, as in Keycloak, for a scope the client has neither way."""
    active = [s for s in (realm.client_scopes.get(n) for n in client.default_scopes) if s]
    requested = (scope_param or "").split()
    for item in requested:
        base, dynamic, _ = item.partition(":")
        scope = realm.client_scopes.get(base)
        if item == "openid" or (scope in active and not dynamic):
            continue
        allowed = base in client.default_scopes or base in client.optional_scopes
        # Only the organization scope takes a value ("organization:<alias>", "organization:*").
        if scope is None or not allowed or (dynamic and not scope.maps_organizations):
            raise InvalidScope(scope_param or "")
        if scope not in active:
            active.append(scope)
    return active, "openid" in requested


def token_scope_string(scopes: Sequence[ClientScope], openid: bool) -> str:
    names = sorted(s.name for s in scopes if s.include_in_token_scope)
    return " ".join((["openid"] if openid else []) + names)


def apply_mappers(kind: str, claims: dict[str, Any], ctx: ClaimContext) -> dict[str, Any]:
    """Run every mapper of the client and its active scopes that is switched on for `kind`."""
    mappers = [*ctx.client.mappers, *(m for s in ctx.scopes for m in s.mappers)]
    for mapper in mappers:
        if mapper["config"].get(kind) != "true":
            continue
        handler = _HANDLERS.get(mapper["protocolMapper"])
        if handler is None:
            log.warning("mapper type %s is not supported here; skipped", mapper["protocolMapper"])
        else:
            handler(claims, mapper["config"], ctx)
    return claims


_DOT = re.compile(r"(?<!\\)\.")


def _set_claim(claims: dict[str, Any], name: str, value: Any, client_id: str) -> None:
    """Keycloak's nested claim names: `realm_access.roles`, `\\.` for a literal dot."""
    path = [p.replace("\\.", ".") for p in _DOT.split(name.replace("${client_id}", client_id))]
    node = claims
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _convert(value: Any, json_type: str | None) -> Any:
    kind = (json_type or "String").lower()
    try:
        if kind in {"long", "int"}:
            return int(value)
        if kind == "boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if kind == "json":
            return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, (str, dict, list)) else str(value)


def _map_values(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext,
                values: Sequence[Any]) -> None:
    converted = [v for v in (_convert(v, config.get("jsonType.label")) for v in values)
                 if v is not None]
    if config.get("claim.name") and converted:
        value = converted if config.get("multivalued") == "true" else converted[0]
        _set_claim(claims, config["claim.name"], value, ctx.client.client_id)


_USER_FIELDS: dict[str, Callable[[User], Any]] = {
    "username": lambda u: u.username, "email": lambda u: u.email, "id": lambda u: u.id,
    "firstName": lambda u: u.first_name, "lastName": lambda u: u.last_name,
    "emailVerified": lambda u: u.email_verified, "enabled": lambda u: u.enabled,
}


def _user_attribute(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    name = config.get("user.attribute", "")
    if name in _USER_FIELDS:
        value = _USER_FIELDS[name](ctx.user)
        values = [] if value is None or value == "" else [value]
    else:
        values = list(ctx.user.attributes.get(name, ()))
    _map_values(claims, config, ctx, values)


def _full_name(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    parts = [p for p in (ctx.user.first_name, ctx.user.last_name) if p]
    if parts:
        claims["name"] = " ".join(parts)


def _session_note(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    note = ctx.session_notes.get(config.get("user.session.note", ""))
    if note is not None:
        _map_values(claims, config, ctx, [note])


def _realm_roles(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    roles = [config.get("usermodel.realmRoleMapping.rolePrefix", "") + r
             for r in ctx.user.realm_roles]
    if roles:
        value = roles if config.get("multivalued", "true") == "true" else roles[0]
        _set_claim(claims, config.get("claim.name") or "realm_access.roles", value,
                   ctx.client.client_id)


def _client_roles(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    only = config.get("usermodel.clientRoleMapping.clientId")
    for client_id, roles in ctx.user.client_roles.items():
        if roles and (not only or client_id == only):
            name = config.get("claim.name") or "resource_access.${client_id}.roles"
            _set_claim(claims, name, list(roles), client_id)


def _audience(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    audience = config.get("included.client.audience") or config.get("included.custom.audience")
    if audience and audience not in ctx.audiences:
        ctx.audiences.append(audience)


def _audience_resolve(claims: dict[str, Any], config: Mapping[str, str],
                      ctx: ClaimContext) -> None:
    for client_id, roles in ctx.user.client_roles.items():
        if roles and client_id != ctx.client.client_id and client_id not in ctx.audiences:
            ctx.audiences.append(client_id)


def web_origins(client: Client) -> list[str]:
    """The client's web origins; "+" stands for the origins of its redirect URIs."""
    origins: list[str] = []
    for origin in client.web_origins:
        if origin != "+":
            origins.append(origin)
            continue
        for uri in client.redirect_uris:
            parts = urlsplit(uri)
            origins += [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
    return list(dict.fromkeys(origins))


def _allowed_origins(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    if origins := web_origins(ctx.client):
        claims["allowed-origins"] = origins


def _acr(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    # Keycloak: "1" after a login with credentials, "0" when the SSO cookie signed the user in.
    claims["acr"] = str(ctx.session_notes.get("ACR_LEVEL", "1"))


def _organization(claims: dict[str, Any], config: Mapping[str, str], ctx: ClaimContext) -> None:
    """Keycloak 26's Organization Membership mapper: only for an active scope that holds it;
    `organization` maps the user's single organisation, `organization:<alias>` that one,
    `organization:*` all of them."""
    scope_names = {s.name for s in ctx.scopes if s.maps_organizations}
    if not ctx.realm.organizations_enabled or ctx.user.service_account_client_id or \
            not scope_names:
        return
    organizations = [o for o in _requested_organizations(ctx, scope_names) if o.enabled]
    if not organizations:
        return
    multivalued = config.get("multivalued", "true") == "true"
    add_id = multivalued and config.get("addOrganizationId") == "true"
    add_attributes = multivalued and config.get("addOrganizationAttributes") == "true"
    if not multivalued:
        value: Any = organizations[0].alias
    elif add_id or add_attributes or config.get("jsonType.label") == "JSON":
        value = {o.alias: _organization_claim(o, add_id, add_attributes) for o in organizations}
    else:
        value = [o.alias for o in organizations]
    _set_claim(claims, config.get("claim.name") or "organization", value, ctx.client.client_id)


def _organization_claim(org: Organization, add_id: bool, add_attributes: bool) -> dict[str, Any]:
    claim: dict[str, Any] = {"id": org.id} if add_id else {}
    if add_attributes:
        claim.update({k: list(v) for k, v in org.attributes.items()})
    return claim


def _requested_organizations(ctx: ClaimContext, scope_names: set[str]) -> list[Organization]:
    memberships = ctx.realm.organizations_of(ctx.user)
    for item in ctx.requested_scope.split():
        name, _, value = item.partition(":")
        if name in scope_names and value:
            return memberships if value == "*" else [o for o in memberships if o.alias == value]
    # The plain scope maps the user's organisation when there is exactly one; Keycloak would ask
    # the user to pick one in a browser login, which a token request cannot do.
    return memberships if len(memberships) == 1 else []


_HANDLERS: dict[str, Callable[[dict[str, Any], Mapping[str, str], ClaimContext], None]] = {
    "oidc-sub-mapper": lambda claims, config, ctx: claims.__setitem__("sub", ctx.user.id),
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
    "oidc-organization-membership-mapper": _organization,
}
