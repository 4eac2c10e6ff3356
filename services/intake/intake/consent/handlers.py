"""The expiry sweep: a consent past ``valid_until`` ends as a withdrawn one does.

The check on use (``valid_consent``, the internal routes) already refuses an expired consent at
the moment it is asked; this periodic task (beat, every ``CONSENT_EXPIRY_SWEEP_INTERVAL_SECONDS``)
makes the end known to the other services, so that referrals drops the snapshots it holds under
the consent and both organisations get an inbox entry, even when nobody looks at the referral.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

from buendnis_common import metrics
from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import env_float
from buendnis_common.timeutil import berlin_today
from intake.consent import service

log = logging.getLogger(__name__)

EXPIRY_TASK = "intake.report_expired_consents"


def report_expired(runtime: ServiceRuntime, *, today: date | None = None,
                   batch: int = 500) -> int:
    """Every consent newly past its last valid day, in batches of one transaction each."""
    today = today or berlin_today()
    total = 0
    while True:
        with runtime.db.transaction() as session:
            expired = service.report_expired(runtime=runtime, session=session, today=today,
                                             limit=batch)
        total += len(expired)
        if len(expired) < batch:
            break
    if total:
        log.info("%d consent(s) expired and reported", total)
        metrics.CONSENT_EXPIRIES.inc(total)
    return total


def register(runtime: ServiceRuntime) -> None:
    interval = env_float("CONSENT_EXPIRY_SWEEP_INTERVAL_SECONDS", 300.0)

    @runtime.celery.task(name=EXPIRY_TASK, shared=False)
    def report_expired_consents() -> int:
        return report_expired(runtime)

    runtime.celery.conf.beat_schedule["report-expired-consents"] = {
        "task": EXPIRY_TASK,
        "schedule": timedelta(seconds=interval),
        "options": {"queue": runtime.name, "expires": max(interval, 30)},
    }
