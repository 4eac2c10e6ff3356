"""Who may work cases and curate offers: a person of an organisation in an alliance."""
from __future__ import annotations

from buendnis_common.auth import Principal
from buendnis_common.errors import Forbidden
from referrals.codes import CASE_ROLES


def require_case_role(principal: Principal, what: str) -> None:
    """Case workers and coordinators act for their own organisation; core group members,
    auditors and the ministry read reports, not cases."""
    if not principal.has_role(*CASE_ROLES):
        raise Forbidden(f"Only case workers and coordinators can {what}.")
    if not principal.alliance:
        raise Forbidden("Your organisation belongs to no alliance.")
