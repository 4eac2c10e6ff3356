"""Protocol mappers: how the realm file's mappers turn a user, a client and its scopes into claims.

Only the mapper types a Keycloak 26 realm uses for OIDC tokens are implemented; each follows the
behaviour of its Keycloak counterpart closely enough that a token from here and one from Keycloak
carry the same claims for the same realm file. Unknown mapper types are skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .realm import Client, ClientScope, Organization, ProtocolMapper, Realm, User

log = logging.getLogger(__name__)

ACCESS = "access"
ID = "id"
USERINFO = "userinfo"
INTROSPECTION = "introspection"

_FLAG = {
    ACCESS: "access.token.claim",
    ID: "id.token.claim",
    USERINFO: "userinfo.token.claim",
    INTROSPECTION: "introspection.token.claim",
}

ORGANIZATION_MAPPER = "oidc-organization-membership-mapper"


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
    """The client scopes a token request gets: the client's default scopes plus requested optional.

    Returns the scopes and whether `openid` was requested. Raises InvalidScope like Keycloak does
    for a scope that is neither a default nor an optional scope of the client.
    """
    requested = (scope_param or "").split()
    active = [s for s in (realm.client_scope(n) for n in client.default_scopes) if s is not None]
    names = {s.name for s in active}
    invalid = []
    for item in requested:
        if item == "openid":
            continue
        base, dynamic, _ = item.partition(":")
        scope = realm.client_scope(base)
        allowed = base in names or base in client.optional_scopes
        # Only the organization scope takes a value ("organization:<alias>", "organization:*").
        if scope is None or not allowed or (dynamic and not scope.maps_organizations):
            invalid.append(item)
            continue
        if base not in names:
            active.append(scope)
            names.add(base)
    if invalid:
        raise InvalidScope(scope_param or "")
    return active, "openid" in requested


def token_scope_string(scopes: Sequence[ClientScope], openid: bool) -> str:
    names = sorted(s.name for s in scopes if s.include_in_token_scope)
    return " ".join((["openid"] if openid else []) + names)


def mappers_of(client: Client, scopes: Sequence[ClientScope]) -> list[ProtocolMapper]:
    mappers = list(client.mappers)
    for scope in scopes:
        if scope.protocol == "openid-connect":
            mappers.extend(scope.mappers)
    return mappers


def apply_mappers(kind: str, claims: dict[str, Any], ctx: ClaimContext) -> dict[str, Any]:
    """Run every mapper of the client and its active scopes that applies to this kind of token."""
    for mapper in mappers_of(ctx.client, ctx.scopes):
        if not _included(mapper, kind):
            continue
        handler = _HANDLERS.get(mapper.protocol_mapper)
        if handler is None:
            log.warning(
                "mapper type %s (%s) is not supported here; skipped",
                mapper.protocol_mapper,
                mapper.name,
            )
            continue
        handler(claims, mapper, ctx, kind)
    return claims


def _included(mapper: ProtocolMapper, kind: str) -> bool:
    value = mapper.config.get(_FLAG[kind])
    if kind == INTROSPECTION and value is None:
        # Keycloak: mappers without the introspection flag follow the access-token flag.
        return mapper.config.get(_FLAG[ACCESS]) == "true"
    return value == "true"


# --- claim helpers --------------------------------------------------------------------------

_DOT = re.compile(r"(?<!\\)\.")


def _claim_path(name: str, ctx: ClaimContext) -> list[str]:
    name = name.replace("${client_id}", ctx.client.client_id)
    return [part.replace("\\.", ".") for part in _DOT.split(name)]


def set_claim(claims: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = claims
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
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


def _map_values(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, values: Sequence[Any]
) -> None:
    claim_name = mapper.config.get("claim.name")
    if not claim_name or not values:
        return
    json_type = mapper.config.get("jsonType.label")
    converted = [v for v in (_convert(v, json_type) for v in values) if v is not None]
    if not converted:
        return
    value: Any = converted if mapper.config.get("multivalued") == "true" else converted[0]
    set_claim(claims, _claim_path(claim_name, ctx), value)


_USER_FIELDS: dict[str, Callable[[User], Any]] = {
    "username": lambda u: u.username,
    "email": lambda u: u.email,
    "firstName": lambda u: u.first_name,
    "lastName": lambda u: u.last_name,
    "emailVerified": lambda u: u.email_verified,
    "enabled": lambda u: u.enabled,
    "id": lambda u: u.id,
}


def _user_values(user: User, attribute: str) -> list[Any]:
    getter = _USER_FIELDS.get(attribute)
    if getter is not None:
        value = getter(user)
        return [] if value is None or value == "" else [value]
    return list(user.attributes.get(attribute, ()))


# --- mapper types ---------------------------------------------------------------------------


def _sub(claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str) -> None:
    claims["sub"] = ctx.user.id


def _user_attribute(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    _map_values(
        claims, mapper, ctx, _user_values(ctx.user, mapper.config.get("user.attribute", ""))
    )


def _full_name(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    parts = [p for p in (ctx.user.first_name, ctx.user.last_name) if p]
    if parts:
        claims["name"] = " ".join(parts)


def _session_note(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    note = ctx.session_notes.get(mapper.config.get("user.session.note", ""))
    if note is not None:
        _map_values(claims, mapper, ctx, [note])


def _realm_roles(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    roles = ctx.realm.effective_realm_roles(ctx.user, ctx.client)
    prefix = mapper.config.get("usermodel.realmRoleMapping.rolePrefix", "")
    if not roles:
        return
    claim = mapper.config.get("claim.name") or "realm_access.roles"
    path = _claim_path(claim, ctx)
    values = [prefix + r for r in roles]
    set_claim(
        claims, path, values if mapper.config.get("multivalued", "true") == "true" else values[0]
    )


def _client_roles(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    only = mapper.config.get("usermodel.clientRoleMapping.clientId")
    claim = mapper.config.get("claim.name") or "resource_access.${client_id}.roles"
    for client_id, roles in ctx.user.client_roles.items():
        if (only and client_id != only) or not roles:
            continue
        path = [part.replace("${client_id}", client_id) for part in _DOT.split(claim)]
        set_claim(claims, path, list(roles))


def _audience(claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str) -> None:
    audience = mapper.config.get("included.client.audience") or mapper.config.get(
        "included.custom.audience"
    )
    if audience and audience not in ctx.audiences:
        ctx.audiences.append(audience)


def _audience_resolve(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    for client_id, roles in ctx.user.client_roles.items():
        if roles and client_id != ctx.client.client_id and client_id not in ctx.audiences:
            ctx.audiences.append(client_id)


def _allowed_origins(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    origins: list[str] = []
    for origin in ctx.client.web_origins:
        if origin == "+":
            for uri in ctx.client.redirect_uris:
                parts = urlsplit(uri)
                if parts.scheme and parts.netloc:
                    origins.append(f"{parts.scheme}://{parts.netloc}")
        else:
            origins.append(origin)
    if origins:
        claims["allowed-origins"] = list(dict.fromkeys(origins))


def _acr(claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str) -> None:
    # Keycloak: "1" after a login with credentials, "0" when the SSO cookie signed the user in.
    claims["acr"] = str(ctx.session_notes.get("ACR_LEVEL", "1"))


def _organization(
    claims: dict[str, Any], mapper: ProtocolMapper, ctx: ClaimContext, kind: str
) -> None:
    """Keycloak 26's Organization Membership mapper.

    Organisations are only mapped when a client scope holding this mapper is active for the request
    (the `organization` scope, requested or a default scope of the client). `organization` maps the
    user's single organisation, `organization:<alias>` that one, `organization:*` all of them.
    """
    if not ctx.realm.organizations_enabled or ctx.user.is_service_account:
        return
    org_scopes = [s for s in ctx.scopes if s.maps_organizations]
    if not org_scopes:
        return
    organizations = _requested_organizations(ctx, {s.name for s in org_scopes})
    organizations = [o for o in organizations if o.enabled]
    if not organizations:
        return

    config = dict(mapper.config)
    multivalued = config.get("multivalued", "true") == "true"
    add_id = multivalued and config.get("addOrganizationId") == "true"
    add_attributes = multivalued and config.get("addOrganizationAttributes") == "true"
    json_type = "JSON" if (add_id or add_attributes) else config.get("jsonType.label", "String")
    claim = config.get("claim.name") or "organization"

    if not multivalued:
        value: Any = organizations[0].alias
    elif json_type == "JSON":
        value = {o.alias: _organization_claim(o, add_id, add_attributes) for o in organizations}
    else:
        value = [o.alias for o in organizations]
    set_claim(claims, _claim_path(claim, ctx), value)


def _organization_claim(org: Organization, add_id: bool, add_attributes: bool) -> dict[str, Any]:
    claim: dict[str, Any] = {}
    if add_id:
        claim["id"] = org.id
    if add_attributes:
        claim.update({k: list(v) for k, v in org.attributes.items()})
    return claim


def _requested_organizations(ctx: ClaimContext, scope_names: set[str]) -> list[Organization]:
    memberships = ctx.realm.organizations_of(ctx.user)
    for item in ctx.requested_scope.split():
        name, _, value = item.partition(":")
        if name not in scope_names or not value:
            continue
        if value == "*":
            return memberships
        return [o for o in memberships if o.alias == value]
    # The plain scope maps the user's organisation when there is exactly one; Keycloak would ask
    # the user to pick one in a browser login, which a token request cannot do.
    return memberships if len(memberships) == 1 else []


_HANDLERS: dict[str, Callable[[dict[str, Any], ProtocolMapper, ClaimContext, str], None]] = {
    "oidc-sub-mapper": _sub,
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
