"""Periodic work on participants: erasing those with no activity for the retention period."""
from __future__ import annotations

from datetime import datetime, timedelta

from celery.schedules import crontab
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from buendnis_common.db import utcnow
from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import env_int
from intake.participant import service
from intake.participant.models import Participant

RETENTION_ACTOR = "retention"


def erase_inactive(*, runtime: ServiceRuntime, now: datetime | None = None,
                   batch: int = 500) -> int:
    """Erase every participant whose last activity is older than ``RETENTION_MONTHS``
    (default 36), each in its own transaction, publishing ``participant.erased``."""
    cutoff = (now or utcnow()) - relativedelta(months=env_int("RETENTION_MONTHS", 36))
    erased = 0
    while True:
        with runtime.db.transaction() as session:
            stale = session.scalars(
                select(Participant).where(Participant.last_activity_at < cutoff)
                .order_by(Participant.last_activity_at).limit(batch)
            ).all()
            for participant in stale:
                service.erase(runtime=runtime, session=session, participant=participant,
                              actor=RETENTION_ACTOR)
        erased += len(stale)
        if len(stale) < batch:
            return erased


def register(runtime: ServiceRuntime) -> None:
    @runtime.celery.task(name="intake.erase_inactive_participants", shared=False)
    def erase_inactive_participants() -> int:
        return erase_inactive(runtime=runtime)

    runtime.celery.conf.beat_schedule["erase-inactive-participants"] = {
        "task": "intake.erase_inactive_participants",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": runtime.name, "expires": timedelta(hours=6).total_seconds()},
    }
