"""Consent is checked at the moment of use: the receiver sees shared data only while the
participant's consent holds, as intake says now.

- **On read**: before a receiver is shown referrals that still hold a snapshot, intake is asked
  whether their consents hold (one call for the page). A withdrawn or expired consent drops the
  snapshot there and then, as the event would; a consent past the ``valid_until`` referrals
  already knows is dropped without asking. When intake cannot answer, the snapshot is not shown
  (fail closed) but kept, since the consent may well hold.
- **By event**: ``consent.withdrawn`` and ``consent.expired`` (intake's expiry sweep) drop the
  snapshots held under the consent even when nobody reads them (``referral.tasks``).
- **By beat** (``sweep``, every ``CONSENT_RECHECK_INTERVAL_SECONDS``): snapshots held past the
  consent's last valid day go even if the expiry event never came, and a consent intake could
  not confirm after the commit is asked about again.
- **After a referral is stored**: intake is asked once more, after the commit. A withdrawal
  that intake committed before that question is seen and the snapshot dropped here; one
  committed after it produces an event whose handler runs after our commit and so finds the
  referral. Either way no snapshot outlives the consent, also on PostgreSQL, where a withdrawal
  handled between the creation's own check and its commit could not see the uncommitted row.

Every drop publishes ``referral.snapshot_dropped`` (ids and a reason code): notifications puts
an entry in the inbox of both sides.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import ServiceUnavailable
from buendnis_common.service import ServiceRuntime
from buendnis_common.timeutil import berlin_today
from referrals.referral.models import CONSENT_EXPIRED, CONSENT_WITHDRAWN, Referral
from referrals.referral.service import _drop_snapshot, event_fields, side_of

log = logging.getLogger(__name__)

_REASONS = {"withdrawn": CONSENT_WITHDRAWN, "expired": CONSENT_EXPIRED}


@dataclass(frozen=True)
class ConsentStatus:
    valid: bool
    ended: str | None
    valid_until: date | None


def ask_intake(runtime: ServiceRuntime,
               consent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ConsentStatus]:
    """Whether each consent holds now, as intake says; ``ServiceUnavailable`` when intake
    cannot answer (or answers something unusable)."""
    ids = list(dict.fromkeys(consent_ids))
    if not ids:
        return {}
    response = runtime.services.request("intake", "POST", "/internal/consents/status",
                                        json={"consent_ids": [str(i) for i in ids]})
    if response.status_code != 200:
        raise ServiceUnavailable("consent.check_unavailable")
    try:
        body = response.json()["consents"]
        answer = {}
        for consent_id in ids:
            item = body[str(consent_id)]
            until = item.get("valid_until")
            answer[consent_id] = ConsentStatus(
                valid=item["valid"] is True, ended=item.get("ended"),
                valid_until=date.fromisoformat(until) if until else None)
        return answer
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ServiceUnavailable("consent.check_unusable") from None


def holds_snapshot(referral: Referral) -> bool:
    return referral.snapshot_dropped_at is None and referral.consent_id is not None


def lapsed(referral: Referral, today: date | None = None) -> bool:
    """Past the consent's last valid day as referrals knows it (no question to intake)."""
    until = referral.consent_valid_until
    return until is not None and until < (today or berlin_today())


def drop(runtime: ServiceRuntime, session: Session, referral: Referral, reason: str) -> None:
    """Drop the snapshot and tell both sides (through notifications)."""
    _drop_snapshot(runtime, session, referral, reason, utcnow(), referral.from_org)
    runtime.emit(session, "referral.snapshot_dropped", **event_fields(referral), reason=reason)


def check_for_receiver(runtime: ServiceRuntime, session: Session, referrals: list[Referral],
                       principal: Principal) -> set[uuid.UUID]:
    """Before ``principal`` is shown ``referrals``: drop the snapshots of those it received
    whose consent no longer holds. Returns the ids of those whose consent intake could not
    confirm just now: their snapshot must not be shown.

    Asks intake over HTTP first and writes afterwards: call it with no transaction open (on
    SQLite a transaction holds the database's write lock)."""
    today = berlin_today()
    received = [r for r in referrals
                if side_of(r, principal) == "receiver" and holds_snapshot(r)]
    ended: dict[uuid.UUID, str] = {r.id: CONSENT_EXPIRED for r in received if lapsed(r, today)}
    ask = [r for r in received if r.id not in ended]
    unconfirmed: set[uuid.UUID] = set()
    try:
        statuses = ask_intake(runtime, [r.consent_id for r in ask])
    except ServiceUnavailable:
        log.warning("intake could not confirm %d consent(s); their snapshots are not shown",
                    len(ask))
        _apply(runtime, session, received, ended)
        return {r.id for r in ask}
    for referral in ask:
        status = statuses[referral.consent_id]
        if status.valid:
            continue
        if status.ended in _REASONS:
            ended[referral.id] = _REASONS[status.ended]
        else:  # unknown to intake: the participant's erasure is on its way
            unconfirmed.add(referral.id)
    _apply(runtime, session, received, ended)
    return unconfirmed


def _apply(runtime: ServiceRuntime, session: Session, referrals: list[Referral],
           ended: dict[uuid.UUID, str]) -> None:
    for referral in referrals:
        if referral.id in ended:
            session.add(referral)
            # the event handler may be dropping it at this very moment: look again, locked
            session.refresh(referral, with_for_update=True)
            if holds_snapshot(referral):
                drop(runtime, session, referral, ended[referral.id])


def confirm_after_commit(runtime: ServiceRuntime, referral: Referral) -> None:
    """The second question to intake, run once the new referral is committed (an after-commit
    hook of the request's unit of work): drop the snapshot if the consent ended meanwhile,
    else remember its last valid day, in a transaction of its own. If intake cannot answer
    now, the check on read still stands between the snapshot and the receiver."""
    if not holds_snapshot(referral):
        return
    try:
        status = ask_intake(runtime, [referral.consent_id])[referral.consent_id]
    except ServiceUnavailable:
        log.warning("intake could not confirm a new referral's consent; checked on read")
        return
    with runtime.db.transaction() as session:
        # the event handler may be dropping it at this very moment: look again, locked
        stored = session.get(Referral, referral.id, with_for_update=True)
        if stored is None or not holds_snapshot(stored):
            return
        if status.valid:
            stored.consent_valid_until = status.valid_until
        else:
            drop(runtime, session, stored, _REASONS.get(status.ended, CONSENT_WITHDRAWN))


def drop_under_consent(runtime: ServiceRuntime, session: Session, referrals: list[Referral],
                       reason: str) -> None:
    """Tell both sides of each referral whose snapshot was just dropped (event handlers)."""
    for referral in referrals:
        runtime.emit(session, "referral.snapshot_dropped", **event_fields(referral),
                     reason=reason)


def sweep(runtime: ServiceRuntime, *, today: date | None = None, batch: int = 200) -> int:
    """The safety net, run by beat: snapshots still held past the consent's last valid day are
    dropped (even if intake's expiry event never came), and those whose consent intake could
    not confirm after the commit are asked about again. Returns how many were dropped."""
    today = today or berlin_today()
    with runtime.db.transaction() as session:
        lapsed_ones = list(session.scalars(
            select(Referral).where(Referral.snapshot_dropped_at.is_(None),
                                   Referral.consent_valid_until < today)
            .limit(batch).with_for_update()))
        for referral in lapsed_ones:
            drop(runtime, session, referral, CONSENT_EXPIRED)
        unconfirmed = list(session.scalars(
            select(Referral).where(Referral.snapshot_dropped_at.is_(None),
                                   Referral.consent_id.is_not(None),
                                   Referral.consent_valid_until.is_(None),
                                   Referral.created_at < utcnow() - timedelta(minutes=1))
            .order_by(Referral.created_at).limit(batch)))
    dropped = len(lapsed_ones)
    if not unconfirmed:
        return dropped
    try:  # asked with no transaction open
        statuses = ask_intake(runtime, [r.consent_id for r in unconfirmed])
    except ServiceUnavailable:
        log.warning("intake unavailable: %d unconfirmed consent(s) left for the next sweep",
                    len(unconfirmed))
        return dropped
    with runtime.db.transaction() as session:
        for referral in unconfirmed:
            status = statuses[referral.consent_id]
            if status.ended not in (None, *_REASONS):
                continue  # unknown to intake: the participant's erasure is on its way
            referral = session.get(Referral, referral.id, with_for_update=True)
            if referral is None or not holds_snapshot(referral):
                continue
            if status.valid:
                referral.consent_valid_until = status.valid_until
            else:
                drop(runtime, session, referral, _REASONS[status.ended])
                dropped += 1
    return dropped
