"""The role policy: which realm roles may call which route, in one table.

The gateway applies it before forwarding; a route that is not in the table is not reachable.
The services keep their own organisation scoping (defence in depth): this table says *who may
ask*, the services say *what they may see*.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from buendnis_common.auth import Principal

CASE_WORK = frozenset({"case_worker"})
CATALOGUE_READERS = frozenset({"case_worker", "coordinator", "core_group"})
CATALOGUE_EDITORS = frozenset({"case_worker", "coordinator"})
REPORT_READERS = frozenset({"core_group", "coordinator", "ministry"})
AUDITORS = frozenset({"auditor"})
EVERYONE = frozenset({"case_worker", "coordinator", "core_group", "ministry", "auditor"})

# (path, {method: roles}). Path segments in <> are ids.
POLICY: tuple[tuple[str, dict[str, frozenset[str]]], ...] = (
    ("/api/v1/me", {"GET": EVERYONE}),
    ("/api/v1/organizations", {"GET": EVERYONE}),
    # intake
    ("/api/v1/participants", {"GET": CASE_WORK, "POST": CASE_WORK}),
    ("/api/v1/participants/import", {"POST": CASE_WORK}),
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


def _rule_path(path: str) -> str:
    return path.replace("<", "<string:")


_MAP = Map(
    [
        Rule(_rule_path(path), endpoint=(path, method), methods=[method])
        for path, methods in POLICY
        for method in methods
    ],
    strict_slashes=False,
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int  # 200, 403, 404 or 405
    message: str
    route: str | None = None


def roles_for(path_template: str, method: str) -> frozenset[str] | None:
    """The roles for a documented path such as ``/api/v1/participants/<participant_id>``
    (parameter names may differ from the table's)."""
    concrete = re.sub(r"<[^>]+>", "x", path_template)
    try:
        (template, rule_method), _args = _MAP.bind("gateway").match(concrete, method=method.upper())
    except (MethodNotAllowed, NotFound):
        return None
    return dict(POLICY)[template][rule_method]


def decide(principal: Principal, path: str, method: str) -> Decision:
    adapter = _MAP.bind("gateway")
    try:
        (template, rule_method), _args = adapter.match(path, method=method)
    except MethodNotAllowed as exc:
        allowed = ", ".join(sorted(m for m in exc.valid_methods or [] if m != "HEAD"))
        return Decision(False, 405, f"{method} is not allowed here; allowed: {allowed}.")
    except NotFound:
        return Decision(False, 404, "There is no such endpoint.")
    needed = dict(POLICY)[template][rule_method]
    if principal.roles & needed:
        return Decision(True, 200, "", template)
    names = " or ".join(sorted(needed))
    yours = ", ".join(sorted(principal.roles & EVERYONE)) or "none"
    return Decision(
        False, 403,
        f"This needs the role {names}; your roles: {yours}.",
        template,
    )
