"""Who may work cases and curate offers: the shared role policy's answer, and an alliance.

The roles come from ``buendnis_common.policy`` — the table the gateway and every service's
request hook apply — so that the service's own check can never give a different answer than the
policy (coordinators curate the catalogue but do not work on referrals or appointments).
"""
from __future__ import annotations

from buendnis_common import policy
from buendnis_common.auth import Principal
from buendnis_common.errors import Forbidden


def _in_alliance(principal: Principal) -> None:
    if not principal.alliance:
        raise Forbidden("organisation.no_alliance")


def require_case_work(principal: Principal, what: str) -> None:
    """Referrals and appointments (``what`` is done): case workers of the organisation only,
    refused in the policy's own words."""
    if not principal.roles & policy.CASE_WORK:
        raise Forbidden("policy.role_required", **policy.refusal(principal, policy.CASE_WORK))
    _in_alliance(principal)


def require_catalogue_editor(principal: Principal, what: str) -> None:
    """The offer catalogue (``what`` is done): case workers and coordinators, each for their own
    organisation, refused in the policy's own words."""
    if not principal.roles & policy.CATALOGUE_EDITORS:
        raise Forbidden("policy.role_required",
                        **policy.refusal(principal, policy.CATALOGUE_EDITORS))
    _in_alliance(principal)
