"""The role policy: which realm roles may call which route, and which service may call which
internal route — one table, enforced by the gateway *and* by every service on every request.

Why both: a service's port is reachable by anyone on its network, so a service trusts nothing the
network gives it, not even "the gateway already checked". The gateway refuses early (and keeps
the audit trail of refusals); each service refuses again with the same answer, through one hook
in the shared service wiring (``buendnis_common.web.install_policy``). A route that is in
neither table is refused (404) before its view runs: a new route without a policy entry is
closed by default, not forgotten.

This table says *who may ask*; the services say *what they may see* (their own organisation's
records; another organisation's record answers 404).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import MethodNotAllowed as _RoutingMethodNotAllowed
from werkzeug.exceptions import NotFound as _RoutingNotFound
from werkzeug.routing import Map, Rule
from werkzeug.routing import RequestRedirect as _RequestRedirect

from .auth import Principal
from .errors import DomainError, Forbidden, NotFound
from .messages import AnyOf
from .settings import SERVICE_PORTS, env_str
from .vocabulary import ROLES

CASE_WORK = frozenset({"case_worker"})
CATALOGUE_READERS = frozenset({"case_worker", "coordinator", "core_group"})
CATALOGUE_EDITORS = frozenset({"case_worker", "coordinator"})
REPORT_READERS = frozenset({"core_group", "coordinator", "ministry"})
AUDITORS = frozenset({"auditor"})
EVERYONE = frozenset(ROLES)

# (path, {method: roles}). Path segments in <> are ids.
POLICY: tuple[tuple[str, dict[str, frozenset[str]]], ...] = (
    ("/api/v1/me", {"GET": EVERYONE}),
    ("/api/v1/organizations", {"GET": EVERYONE}),
    # intake
    ("/api/v1/participants", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/participants/import", {"POST": CASE_WORK}),
    ("/api/v1/participants/imports/<import_id>", {"GET": CASE_WORK}),
    ("/api/v1/participants/<participant_id>",
     {"GET": CASE_WORK, "PATCH": CASE_WORK, "DELETE": CASE_WORK}),
    ("/api/v1/participants/<participant_id>/export", {"GET": CASE_WORK}),
    ("/api/v1/participants/<participant_id>/needs", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/participants/<participant_id>/needs/<need_id>",
     {"GET": CASE_WORK, "PATCH": CASE_WORK}),
    ("/api/v1/participants/<participant_id>/consents", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/participants/<participant_id>/consents/<consent_id>",
     {"GET": CASE_WORK, "DELETE": CASE_WORK}),
    # referrals: the offer catalogue
    ("/api/v1/offers", {"GET": CATALOGUE_READERS, "POST": CATALOGUE_EDITORS}),
    ("/api/v1/offers/<offer_id>", {"GET": CATALOGUE_READERS, "PATCH": CATALOGUE_EDITORS}),
    # referrals: referrals and appointments
    ("/api/v1/referrals", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>", {"GET": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>/status", {"POST": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>/history", {"GET": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>/fhir", {"GET": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>/messages", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/referrals/<referral_id>/appointments", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/appointments", {"GET": CASE_WORK}),
    ("/api/v1/appointments/<appointment_id>", {"GET": CASE_WORK, "PATCH": CASE_WORK}),
    # referrals: reports without personal data
    ("/api/v1/reports/referrals", {"GET": REPORT_READERS}),
    ("/api/v1/reports/gaps", {"GET": REPORT_READERS}),
    ("/api/v1/reports/stuck", {"GET": REPORT_READERS}),
    # notifications
    ("/api/v1/notifications", {"GET": EVERYONE}),
    ("/api/v1/notifications/<notification_id>/read", {"POST": EVERYONE}),
    ("/api/v1/notifications/preferences", {"GET": EVERYONE, "PUT": EVERYONE}),
    ("/api/v1/reminders", {"GET": CASE_WORK}),
    # the gateway's own
    ("/api/v1/audit", {"GET": AUDITORS}),
)

# Public routes: anyone may call them, without a token. Only what holds no personal data and is
# meant to be published: the open offer directory (Open Referral HSDS 3.0) of the offers their
# provider marked public. The service that answers filters on that mark in its query.
PUBLIC_POLICY: tuple[tuple[str, frozenset[str]], ...] = (
    ("/hsds/", frozenset({"GET"})),
    ("/hsds/services", frozenset({"GET"})),
    ("/hsds/services/<service_id>", frozenset({"GET"})),
    ("/hsds/organizations", frozenset({"GET"})),
    ("/hsds/organizations/<organization_id>", frozenset({"GET"})),
    # Participants answer reminders. The SMS provider posts a reply, signed with the shared
    # SMS_WEBHOOK_SECRET, which the notifications service checks itself (403 otherwise); the
    # link of an e-mail reminder is signed with ANSWER_LINK_KEY and names one appointment.
    ("/webhooks/sms/inbound", frozenset({"POST"})),
    ("/answers/<token>", frozenset({"GET", "POST"})),
)

# Query parameters that turn a route into a read of personal data: with the parameter, the route
# needs these roles as well. The offer catalogue is for coordinators and the core group too, but
# ``?participant_id=`` matches offers against a person's profile (residence status, age, needs).
QUERY_POLICY: dict[tuple[str, str], dict[str, frozenset[str]]] = {
    ("/api/v1/offers", "GET"): {"participant_id": CASE_WORK},
}

# Internal routes: (path, {method: the services whose service account may call it}). Each route
# serves exactly the one caller that needs it.
INTERNAL_POLICY: tuple[tuple[str, dict[str, frozenset[str]]], ...] = (
    # intake, for referrals: may this participant's data go to that organisation, and the
    # (nameless) profile the offer matching needs
    ("/internal/participants/<participant_id>/sharing", {"GET": frozenset({"referrals"})}),
    ("/internal/participants/<participant_id>/profile", {"GET": frozenset({"referrals"})}),
    # intake, for notifications: how to reach the participant at the moment of sending
    ("/internal/participants/<participant_id>/contact", {"GET": frozenset({"notifications"})}),
    # …and of many participants at once, when a burst of reminders falls due (ids in the body)
    ("/internal/participants/contacts", {"POST": frozenset({"notifications"})}),
    # intake: does a consent hold now (ids and codes only) — checked at the moment of use
    ("/internal/consents/status", {"POST": frozenset({"referrals"})}),
    ("/internal/consents/current", {"GET": frozenset({"notifications"})}),
    # referrals and notifications, for intake's Art. 15 export
    ("/internal/participants/<participant_id>/export", {"GET": frozenset({"intake"})}),
)


def _rule_path(path: str) -> str:
    return path.replace("<", "<string:")


def _map(table) -> Map:
    return Map(
        [
            Rule(_rule_path(path), endpoint=(path, method), methods=[method])
            for path, methods in table
            for method in methods
        ],
        strict_slashes=False,
    )


_MAP = _map(POLICY)
_INTERNAL_MAP = _map(INTERNAL_POLICY)
# Looked up on every request: built once.
_ROLES = dict(POLICY)
_INTERNAL_CALLERS = dict(INTERNAL_POLICY)
_PUBLIC_MAP = Map(
    [Rule(_rule_path(path), endpoint=path, methods=sorted(methods))
     for path, methods in PUBLIC_POLICY],
    strict_slashes=True,
)


def is_public(path: str, method: str) -> bool:
    """Is ``method path`` a public route (no token, no role)? Exact paths only."""
    method = "GET" if method == "HEAD" else method
    try:
        _PUBLIC_MAP.bind("policy").match(path, method=method)
    except (_RoutingMethodNotAllowed, _RoutingNotFound, _RequestRedirect):
        return False
    return True


def template(path: str, method: str) -> str | None:
    """The table's template of an API request (``/api/v1/participants/<participant_id>``), or
    None for a route in no table: a label for figures that never carries an id."""
    matched = _match(_MAP, path, "GET" if method == "HEAD" else method)
    return matched[0] if isinstance(matched, tuple) else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int  # 200, 403, 404 or 405
    code: str  # the refusal's error code ("" when allowed)
    route: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


class MethodNotAllowed(DomainError):
    status = 405


_ERRORS = {403: Forbidden, 404: NotFound, 405: MethodNotAllowed}


def enforce(decision: Decision) -> None:
    """Raise the decision's error (API.md's body), or return when the request may go on."""
    if not decision.allowed:
        raise _ERRORS[decision.status](decision.code, **decision.params)


def roles_for(path_template: str, method: str) -> frozenset[str] | None:
    """The roles for a documented path such as ``/api/v1/participants/<participant_id>``
    (parameter names may differ from the table's)."""
    concrete = re.sub(r"<[^>]+>", "x", path_template)
    try:
        (template, rule_method), _args = _MAP.bind("policy").match(concrete, method=method.upper())
    except (_RoutingMethodNotAllowed, _RoutingNotFound):
        return None
    return _ROLES[template][rule_method]


def _match(routes: Map, path: str, method: str) -> tuple[str, str] | Decision:
    try:
        (template, rule_method), _args = routes.bind("policy").match(path, method=method)
    except _RoutingMethodNotAllowed as exc:
        allowed = sorted(m for m in exc.valid_methods or [] if m != "HEAD")
        return Decision(False, 405, "policy.method_not_allowed",
                        params={"method": method, "allowed": allowed})
    except _RoutingNotFound:
        return Decision(False, 404, "policy.no_such_endpoint")
    return template, rule_method


def refusal(principal: Principal, needed: frozenset[str]) -> dict[str, Any]:
    """The params of the one refusal of a role (``policy.role_required``), wherever it happens:
    ``raise Forbidden("policy.role_required", **refusal(principal, needed))``."""
    return {"needed": AnyOf(sorted(needed)), "yours": sorted(principal.roles & EVERYONE)}


def _given(args: Mapping[str, str] | None, name: str) -> bool:
    """Is the parameter in the query with a value — any of its values, if it is repeated?"""
    if not args:
        return False
    values = args.getlist(name) if hasattr(args, "getlist") else [args.get(name)]
    return any(str(value or "").strip() for value in values)


def decide(principal: Principal, path: str, method: str,
           args: Mapping[str, str] | None = None) -> Decision:
    """May this person call ``method path`` (with the query ``args``)?"""
    method = "GET" if method == "HEAD" else method
    matched = _match(_MAP, path, method)
    if isinstance(matched, Decision):
        return matched
    template, rule_method = matched
    needed = _ROLES[template][rule_method]
    if not principal.roles & needed:
        return Decision(False, 403, "policy.role_required", template,
                        refusal(principal, needed))
    for parameter, roles in QUERY_POLICY.get((template, rule_method), {}).items():
        if _given(args, parameter) and not principal.roles & roles:
            return Decision(False, 403, "policy.role_required", template,
                            refusal(principal, roles))
    return Decision(True, 200, "", template)


def service_of(client_id: str) -> str | None:
    """The service whose service account ``client_id`` is (``<SERVICE>_CLIENT_ID``)."""
    for name in SERVICE_PORTS:
        if env_str(f"{name.upper()}_CLIENT_ID", f"{name}-service") == client_id:
            return name
    return None


def decide_internal(principal: Principal, path: str, method: str) -> Decision:
    """May this caller use an internal route? Only the service account of the one service the
    route is for; a person's token never, whatever its roles."""
    if not principal.is_service:
        return Decision(False, 403, "policy.services_only")
    method = "GET" if method == "HEAD" else method
    matched = _match(_INTERNAL_MAP, path, method)
    if isinstance(matched, Decision):
        return matched
    template, rule_method = matched
    callers = _INTERNAL_CALLERS[template][rule_method]
    if service_of(principal.client_id) not in callers:
        return Decision(False, 403, "policy.service_only", template,
                        {"services": AnyOf(sorted(callers))})
    return Decision(True, 200, "", template)
