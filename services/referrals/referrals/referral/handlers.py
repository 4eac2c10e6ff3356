"""Background work of referrals: the overdue sweep (beat) and intake's consent events
(withdrawn, expired: the snapshots held under the consent are dropped and both sides told)."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common import metrics
from buendnis_common.db import utcnow
from buendnis_common.events import Event
from buendnis_common.service import EventHandlers, ServiceRuntime
from buendnis_common.settings import env_float
from referrals.referral import consent_ends, service
from referrals.referral.models import CONSENT_EXPIRED, CONSENT_WITHDRAWN, Referral

log = logging.getLogger(__name__)

handlers = EventHandlers()

MARK_OVERDUE_TASK = "referrals.mark_overdue"
CONSENT_SWEEP_TASK = "referrals.consent_sweep"


def on_consent_withdrawn(runtime: ServiceRuntime, *, session: Session, event: Event) -> None:
    dropped = service.drop_for_withdrawn_consent(
        runtime=runtime, session=session,
        participant_id=uuid.UUID(event.data["participant_id"]),
        owner_org=event.data["owner_org"],
        recipient_org=event.data["recipient_org"],
        consent_id=uuid.UUID(event.data["consent_id"]) if event.data.get("consent_id") else None,
        withdrawn_at=event.occurred_at,
    )
    consent_ends.drop_under_consent(runtime, session, dropped, CONSENT_WITHDRAWN)
    log.info("consent withdrawn: %d referral snapshot(s) dropped", len(dropped))


def on_consent_expired(runtime: ServiceRuntime, *, session: Session, event: Event) -> None:
    """Intake's sweep found the consent past its last valid day: every snapshot held under it
    goes, as on withdrawal (a referral under a newer consent keeps its own)."""
    held = session.scalars(
        select(Referral).where(
            Referral.consent_id == uuid.UUID(event.data["consent_id"]),
            Referral.participant_id == uuid.UUID(event.data["participant_id"]),
            Referral.snapshot_dropped_at.is_(None),
        ).with_for_update()
    ).all()
    for referral in held:
        consent_ends.drop(runtime, session, referral, CONSENT_EXPIRED)
    log.info("consent expired: %d referral snapshot(s) dropped", len(held))


def mark_overdue(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """One sweep, in its own transaction; ``now`` lets tests freeze the clock."""
    with runtime.db.transaction() as session:
        marked = service.mark_overdue(runtime=runtime, session=session, now=now or utcnow())
    if marked:
        log.info("%d referral(s) marked overdue", len(marked))
        metrics.REFERRALS_OVERDUE.inc(len(marked))
    return len(marked)


def register(runtime: ServiceRuntime, *, interval_seconds: float) -> None:
    # The consent handlers publish events (referral.snapshot_dropped): bound to the runtime
    # whose outbox they write to, not looked up in an app context.
    runtime.consumer.handles("consent.withdrawn")(partial(on_consent_withdrawn, runtime))
    runtime.consumer.handles("consent.expired")(partial(on_consent_expired, runtime))

    @runtime.celery.task(name=CONSENT_SWEEP_TASK, shared=False)
    def consent_sweep_task() -> int:
        return consent_ends.sweep(runtime)

    recheck = env_float("CONSENT_RECHECK_INTERVAL_SECONDS", 300.0)

    # Not shared: a task shared between Celery apps would, in a process with several apps
    # (tests), run with the first app's runtime.
    @runtime.celery.task(name=MARK_OVERDUE_TASK, shared=False)
    def mark_overdue_task() -> int:
        return mark_overdue(runtime)

    runtime.celery.conf.beat_schedule = {
        **(runtime.celery.conf.beat_schedule or {}),
        "mark-overdue-referrals": {
            "task": MARK_OVERDUE_TASK,
            "schedule": timedelta(seconds=interval_seconds),
            "options": {"queue": runtime.name, "expires": max(interval_seconds, 30)},
        },
        "consent-sweep": {
            "task": CONSENT_SWEEP_TASK,
            "schedule": timedelta(seconds=recheck),
            "options": {"queue": runtime.name, "expires": max(recheck, 30)},
        },
    }
