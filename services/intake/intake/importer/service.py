"""Import of a participant list: validate every row like a registration, then import all or
nothing, or only the valid rows.

A list of up to ``IMPORT_SYNC_MAX_ROWS`` rows is imported in the request and answered with its
row report (201), as the API has always done. A longer one is kept (its file only until it is
processed), and the intake worker imports it, writing its progress and then the same report,
which ``GET /api/v1/participants/imports/<id>`` shows to the importing organisation only. The
task gets the import's id, never the file or anything in it.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from celery.schedules import crontab
from marshmallow import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from buendnis_common import unit_of_work
from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import (
    DomainError,
    NotFound,
    ServiceUnavailable,
    coded_errors,
    field_error,
)
from buendnis_common.messages import text
from buendnis_common.service import ServiceRuntime
from buendnis_common.settings import env_int
from intake.importer.limits import ImportLimits
from intake.importer.models import FINISHED, ParticipantImport
from intake.importer.parsing import FIELD_TO_COLUMN, read_rows, to_participant
from intake.participant import schemas
from intake.participant import service as participants

log = logging.getLogger(__name__)

RUN_TASK = "intake.run_import"
MAX_ATTEMPTS = 3  # a worker lost three times on one file: give up rather than loop
PROGRESS_EVERY = 250  # rows between progress writes


def _flatten(messages: dict, prefix: str = "") -> list[tuple[str, object]]:
    flat = []
    for key, value in messages.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.extend(_flatten(value, f"{name}."))
        else:
            for message in value if isinstance(value, list) else [value]:
                flat.append((name, message))
    return flat


def _column(field: str) -> str:
    if field.startswith("needs."):
        return "needs"
    return FIELD_TO_COLUMN.get(field, field.split(".")[0])


def validate(filename: str, content: bytes, limits: ImportLimits | None = None,
             progress: Callable[[int, int], None] | None = None,
             ) -> tuple[int, list[tuple[int, dict]], list[dict]]:
    """(rows read, valid rows with their number, errors as {row, field, message}).
    ``progress(done, total)`` is called every ``PROGRESS_EVERY`` rows."""
    schema = schemas.ParticipantCreate()
    valid, errors = [], []
    rows = read_rows(filename, content, limits)
    for done, (number, values) in enumerate(rows, start=1):
        try:
            valid.append((number, schema.load(to_participant(values))))
        except ValidationError as exc:
            for field, message in _flatten(exc.normalized_messages()):
                # code, params and message (in the request's language; English in the worker)
                errors.append({"row": number, "field": _column(field), **field_error(message)})
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, len(rows))
    return len(rows), valid, errors


def refusal(rows: int, errors: list[dict]) -> dict[str, int]:
    """The params of ``import.rows_invalid``: nothing was imported for errors in rows."""
    return {"invalid": len({e["row"] for e in errors}), "rows": rows}


def import_rows(
    *, runtime: ServiceRuntime, session: Session, principal: Principal,
    rows: list[tuple[int, dict]], in_worker: bool = False,
) -> list[dict]:
    created = participants.register_many(
        runtime=runtime, session=session, principal=principal, rows=[data for _, data in rows],
        in_worker=in_worker,
    )
    return [
        {"row": number, "id": str(participant.id), "pseudonym": participant.pseudonym}
        for (number, _), participant in zip(rows, created, strict=True)
    ]


# --- in the worker --------------------------------------------------------------------------


def queue(*, runtime: ServiceRuntime, session: Session, principal: Principal, kind: str,
          mode: str, content: bytes, rows: int) -> ParticipantImport:
    """Keep the file and hand the import to the worker (after the commit)."""
    record = ParticipantImport(
        id=uuid.uuid4(), owner_org=principal.org_alias, alliance=principal.alliance,
        created_by=principal.username, kind=kind, mode=mode, status="queued", rows_total=rows,
        rows_done=0, attempts=0, content=content, created_at=utcnow(), updated_at=utcnow(),
    )
    session.add(record)
    return record


def start(*, runtime: ServiceRuntime, session: Session, principal: Principal, kind: str,
          mode: str, content: bytes, rows: int) -> ParticipantImport:
    """Queue the import; once it is committed, hand it to the worker. If the broker cannot
    take it, no file is kept that nobody works on, and the answer is 503."""
    record = queue(runtime=runtime, session=session, principal=principal, kind=kind,
                   mode=mode, content=content, rows=rows)

    def hand_over() -> None:
        try:
            runtime.celery.send_task(RUN_TASK, args=[str(record.id)], queue=runtime.name,
                                     retry=False)
        except Exception:  # noqa: BLE001 - the broker is down
            with runtime.db.transaction() as cleanup:
                cleanup.execute(delete(ParticipantImport)
                                .where(ParticipantImport.id == record.id))
            raise ServiceUnavailable("import.not_started") from None

    unit_of_work.after_commit(hand_over)
    return record


def get(*, session: Session, principal: Principal, import_id: uuid.UUID) -> ParticipantImport:
    record = session.get(ParticipantImport, import_id)
    if record is None or record.owner_org != principal.org_alias:
        raise NotFound("import.not_found")
    return record


def _set(runtime: ServiceRuntime, import_id: uuid.UUID, **values) -> None:
    """A short transaction of its own: progress is readable while the import runs."""
    with runtime.db.transaction() as session:
        session.execute(update(ParticipantImport).where(ParticipantImport.id == import_id)
                        .values(updated_at=utcnow(), **values))


def _finish(record: ParticipantImport, status: str, **values) -> None:
    record.status = status
    record.content = None  # the file is gone once the import has an outcome
    record.finished_at = record.updated_at = utcnow()
    for name, value in values.items():
        setattr(record, name, value)


def run(*, runtime: ServiceRuntime, import_id: uuid.UUID) -> str:
    """The worker's part: check, validate with progress, import, report; delete the file."""
    with runtime.db.transaction() as session:
        record = session.get(ParticipantImport, import_id)
        if record is None or record.status in FINISHED or record.content is None:
            return "gone"
        record.attempts += 1
        if record.attempts > MAX_ATTEMPTS:
            _finish(record, "failed", message="The import stopped repeatedly on our side; "
                    "nothing was imported. Split the list and try again.")
            return "failed"
        record.status, record.rows_done, record.updated_at = "checking", 0, utcnow()
        kind, mode, content = record.kind, record.mode, record.content
        principal = Principal(subject=record.created_by, username=record.created_by,
                              client_id="intake-import", roles=frozenset({"case_worker"}),
                              org_alias=record.owner_org, alliance=record.alliance)
    try:
        rows, valid, errors = validate(
            f"list.{kind}", content,
            progress=lambda done, total: _set(runtime, import_id, rows_done=done,
                                              rows_total=total))
    except DomainError as refused:
        with runtime.db.transaction() as session:
            _finish(session.get(ParticipantImport, import_id), "failed",
                    message=refused.message,
                    errors=coded_errors(refused.errors, every_text=False))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - recorded as failed below
        _fail_unexpectedly(runtime, import_id, exc)
        return "failed"
    report = {"mode": mode, "rows": rows, "imported": [], "errors": errors}
    if errors and mode == "all_or_nothing":
        with runtime.db.transaction() as session:
            _finish(session.get(ParticipantImport, import_id), "failed",
                    message=text("import.rows_invalid", refusal(rows, errors)),
                    errors={"rows": errors}, report=report,
                    rows_done=rows,
                    rows_total=rows)
        return "failed"
    _set(runtime, import_id, status="importing", rows_done=rows, rows_total=rows)
    try:
        with runtime.db.transaction() as session:
            # Locked: should the task run twice (a lost worker), only one run imports.
            record = session.scalar(select(ParticipantImport).where(
                ParticipantImport.id == import_id).with_for_update())
            if record is None or record.content is None:
                return "gone"
            report["imported"] = import_rows(runtime=runtime, session=session,
                                             principal=principal, rows=valid, in_worker=True)
            _finish(record, "done", report=report)
    except Exception as exc:  # noqa: BLE001 - recorded as failed
        _fail_unexpectedly(runtime, import_id, exc)
        return "failed"
    return "done"


def _fail_unexpectedly(runtime: ServiceRuntime, import_id: uuid.UUID, exc: Exception) -> None:
    # The type only: a traceback or a database error could carry the file's data.
    log.error("import %s failed: %s", import_id, type(exc).__name__)
    with runtime.db.transaction() as session:
        record = session.get(ParticipantImport, import_id)
        if record is not None and record.status not in FINISHED:
            _finish(record, "failed", message="Something went wrong on our side; nothing was "
                    "imported. It has been logged.")


def purge(*, runtime: ServiceRuntime, now: datetime | None = None) -> int:
    """Files of imports that never finished (a lost task) are deleted after a day; finished
    imports' reports after ``IMPORT_REPORT_DAYS``."""
    now = now or utcnow()
    with runtime.db.transaction() as session:
        stale = session.scalars(select(ParticipantImport).where(
            ParticipantImport.status.not_in(FINISHED),
            ParticipantImport.updated_at < now - timedelta(days=1))).all()
        for record in stale:
            _finish(record, "failed", message="The import did not finish; nothing was "
                    "imported. Send the list again.")
        gone = session.execute(delete(ParticipantImport).where(
            ParticipantImport.finished_at
            < now - timedelta(days=env_int("IMPORT_REPORT_DAYS", 30)))).rowcount
    return len(stale) + (gone or 0)


def register(runtime: ServiceRuntime) -> None:
    @runtime.celery.task(name=RUN_TASK, shared=False, acks_late=True,
                         reject_on_worker_lost=True)
    def run_import(import_id: str) -> str:
        return run(runtime=runtime, import_id=uuid.UUID(import_id))

    @runtime.celery.task(name="intake.purge_imports", shared=False)
    def purge_imports() -> int:
        return purge(runtime=runtime)

    runtime.celery.conf.beat_schedule["purge-imports"] = {
        "task": "intake.purge_imports",
        "schedule": crontab(hour=3, minute=41),
        "options": {"queue": runtime.name, "expires": timedelta(hours=6).total_seconds()},
    }
