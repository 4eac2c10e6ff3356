"""The audit trail's consumer: each service's ``audit.recorded`` event becomes one entry; and the
periodic checkpoint of the chain's end, written outside the database."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from buendnis_common import metrics
from buendnis_common.events import Event
from buendnis_common.service import EventHandlers, ServiceRuntime
from buendnis_common.settings import env_float
from gateway.audit import chain

log = logging.getLogger(__name__)

handlers = EventHandlers()

CHECKPOINT_TASK = "gateway.audit_checkpoint"
VERIFY_TASK = "gateway.audit_verify"


@handlers.on("audit.recorded")
def on_audit_recorded(*, session: Session, event: Event) -> None:
    """One entry, or one per participant of a list read (``participant_ids``). The event's
    signature and its source (a service that records audit entries) were checked on receipt."""
    many = event.data.get("participant_ids")
    if many is None:
        chain.append(session, event_id=event.id, source=event.source, fields=event.data)
        return
    records = event.data.get("record_ids") or [event.data.get("record_id")] * len(many)
    chain.append_many(session, [
        (uuid.uuid5(event.id, str(index)), event.source,
         {**event.data, "participant_id": participant_id, "record_id": record_id})
        for index, (participant_id, record_id) in enumerate(zip(many, records, strict=False))
    ])


def register_checkpoints(runtime: ServiceRuntime) -> None:
    """Every ``AUDIT_CHECKPOINT_INTERVAL_SECONDS`` (60) the worker appends the chain's end to the
    checkpoint file, if it moved."""
    directory = chain.checkpoint_dir()
    keys = chain.chain_keys()

    @runtime.celery.task(name=CHECKPOINT_TASK, shared=False)
    def audit_checkpoint() -> int | None:
        with runtime.db.transaction() as session:
            written = chain.write_checkpoint(session, directory, keys=keys)
        if written is not None:
            log.info("audit checkpoint written at entry %d", written.seq)
            return written.seq
        return None

    @runtime.celery.task(name=VERIFY_TASK, shared=False)
    def audit_verify() -> bool:
        """The chain verified as ``python -m gateway.audit verify`` does; the verdict goes to
        the metrics (an alert fires when it is broken or has not been verified for a while)."""
        with runtime.db.Session() as session:
            verdict = chain.verify(session, keys=keys, directory=directory)
        metrics.AUDIT_VERIFIED_OK.set(1 if verdict.intact else 0)
        metrics.AUDIT_VERIFIED_AT.set_to_current_time()
        if not verdict.intact:
            log.error("%s", verdict)
        return verdict.intact

    def trail_length():
        from gateway.models import AuditTrailEntry

        with runtime.db.Session() as session:
            length = session.scalar(select(func.coalesce(func.max(AuditTrailEntry.seq), 0)))
        yield metrics.gauge("buendnis_audit_trail_entries", "Entries in the audit trail", length)

    runtime.readings.append(trail_length)
    verify_interval = env_float("AUDIT_VERIFY_INTERVAL_SECONDS", 3600.0)
    interval = env_float("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 60.0)
    runtime.celery.conf.beat_schedule = {
        **(runtime.celery.conf.beat_schedule or {}),
        "audit-checkpoint": {
            "task": CHECKPOINT_TASK,
            "schedule": timedelta(seconds=interval),
            "options": {"queue": runtime.name, "expires": max(interval * 2, 5)},
        },
        "audit-verify": {
            "task": VERIFY_TASK,
            "schedule": timedelta(seconds=verify_interval),
            "options": {"queue": runtime.name, "expires": max(verify_interval, 5)},
        },
    }
