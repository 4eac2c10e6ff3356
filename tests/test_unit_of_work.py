"""One transaction boundary (``buendnis_common.unit_of_work``): a request, an event handled or a
task stores all it wrote — the change, its outbox events, its audit entries — or nothing; no
view commits; a list read is audited once and costs the same number of queries for 5 rows as
for 50."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import String, create_engine, event, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from buendnis_common import unit_of_work
from buendnis_common.auth import Principal
from buendnis_common.db import Database, utcnow
from buendnis_common.errors import NotFound, register_error_handlers
from buendnis_common.events import Event
from buendnis_common.settings import ServiceSettings
from tests.intake.conftest import person
from tests.referrals import conftest as referrals_conftest
from tests.support.platform import wait_for
from tests.support.tokens import TokenForge
from tests.test_token_verifier import settings_for

REPO = Path(__file__).resolve().parents[1]
referrals_app = referrals_conftest.referrals_app  # the referrals service in-process


# -- no view commits ----------------------------------------------------------------------------

def test_no_view_commits_its_transaction():
    views = [*REPO.glob("services/*/*/**/views.py"), *REPO.glob("gateway/gateway/**/*.py")]
    assert len(views) > 10
    committing = [str(path.relative_to(REPO)) for path in views
                  if ".commit(" in path.read_text(encoding="utf-8")]
    assert committing == []


# -- the request's unit, on a small app of its own ----------------------------------------------

class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)


@pytest.fixture
def small_app(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'uow.sqlite3'}")
    Base.metadata.create_all(db.engine)
    app = Flask(__name__)
    register_error_handlers(app)
    app.teardown_appcontext(db.remove)
    unit_of_work.install(app, db)
    hooks: list[str] = []

    def stored(name: str) -> bool:
        with db.Session() as session:
            return session.get(Row, name) is not None

    @app.post("/ok/<name>")
    def ok(name):
        db.session.add(Row(name=name))
        unit_of_work.after_commit(lambda: hooks.append(f"{name} stored: {stored(name)}"))
        return {"name": name}, 201

    @app.post("/answer-422/<name>")
    def answer_422(name):
        db.session.add(Row(name=name))
        db.session.flush()
        unit_of_work.after_commit(lambda: hooks.append("never"))
        return {"message": "refused"}, 422

    @app.post("/raise-404/<name>")
    def raise_404(name):
        db.session.add(Row(name=name))
        db.session.flush()
        raise NotFound("http.not_found")

    @app.post("/twice/<name>")
    def twice(name):
        db.session.add(Row(name=f"{name}-first"))
        db.session.flush()
        db.session.add(Row(name=name))  # already there: the primary key refuses it
        return {"name": name}, 201

    def names():
        with db.Session() as session:
            return sorted(session.scalars(select(Row.name)))

    yield app.test_client(), names, hooks
    db.dispose()


def test_a_success_is_committed_and_then_its_hooks_run(small_app):
    client, names, hooks = small_app
    assert client.post("/ok/a").status_code == 201
    assert names() == ["a"]
    assert hooks == ["a stored: True"]  # the hook saw the committed row


def test_a_4xx_answer_stores_nothing_and_runs_no_hook(small_app):
    client, names, hooks = small_app
    assert client.post("/answer-422/b").status_code == 422
    assert client.post("/raise-404/c").status_code == 404
    assert names() == []
    assert hooks == []


def test_a_broken_constraint_after_a_write_answers_409_and_stores_nothing(small_app):
    client, names, _hooks = small_app
    assert client.post("/ok/d").status_code == 201
    response = client.post("/twice/d")
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.json["code"] == 409
    assert names() == ["d"]  # not d-first, written and flushed before the failure


# -- event handlers: the handler's work and the event's id, together or not at all -------------

def test_a_failing_handler_stores_neither_its_changes_nor_the_event_id(referrals_app):
    runtime = referrals_app.extensions["buendnis"]
    models = runtime.models
    ran_after_commit = []

    def handler(*, session, event: Event) -> None:
        runtime.audit(session, "test.handled", record_id=event.id, actor="system")
        runtime.emit(session, "answer.received", appointment_id=uuid.uuid4(),
                     response="confirmed", responded_at=utcnow(), channel="sms")
        unit_of_work.after_commit(lambda: ran_after_commit.append(event.id))
        if event.data["response"] == "fail":
            # a real failure after the writes: the event's id is recorded once already
            session.add(models.processed_event(event_id=event.id, type=event.type,
                                               processed_at=utcnow()))
            session.flush()

    runtime.consumer.handles("answer.received")(handler)

    def envelope(response: str) -> dict:
        return {"id": str(uuid.uuid4()), "type": "answer.received", "source": "notifications",
                "occurred_at": utcnow().isoformat(),
                "data": {"appointment_id": str(uuid.uuid4()), "response": response,
                         "responded_at": utcnow().isoformat(), "channel": "sms"}}

    def stored():
        with runtime.db.Session() as session:
            return (len(session.scalars(select(models.processed_event)).all()),
                    len(session.scalars(select(models.audit_entry)).all()),
                    len(session.scalars(select(models.outbox)).all()))

    failing = envelope("fail")
    with pytest.raises(Exception, match="(?i)unique|duplicate|integrity"):
        runtime.consumer.dispatch(failing)
    assert stored() == (0, 0, 0)
    assert ran_after_commit == []

    fine = envelope("confirmed")
    assert runtime.consumer.dispatch(fine) is True
    assert stored() == (1, 1, 2)  # the audit entry, its event and the handler's event
    assert ran_after_commit == [uuid.UUID(fine["id"])]
    # Redelivered: skipped, nothing more stored (exactly once).
    assert runtime.consumer.dispatch(fine) is False
    assert stored() == (1, 1, 2)
    # The failed one, delivered again once the cause is gone, is handled then.
    runtime.consumer.handles("answer.received")(lambda *, session, event: None)
    assert runtime.consumer.dispatch(failing) is True
    assert stored()[0] == 2


def test_a_task_unit_rolls_back_on_error_and_hooks_wait_for_the_commit(referrals_app):
    runtime = referrals_app.extensions["buendnis"]
    seen = []
    with pytest.raises(RuntimeError):
        with runtime.db.transaction() as session:
            runtime.audit(session, "test.task", actor="system")
            unit_of_work.after_commit(lambda: seen.append("rolled back: must not run"))
            raise RuntimeError("the task failed")
    with runtime.db.transaction() as session:
        runtime.audit(session, "test.task", actor="system")
        def count() -> None:
            with runtime.db.Session() as fresh:
                seen.append(len(fresh.scalars(select(runtime.models.audit_entry)).all()))

        unit_of_work.after_commit(count)
        assert seen == []
    assert seen == [1]


# -- through the running platform ---------------------------------------------------------------

def _count(platform, service: str, sql: str, **params) -> int:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def _execute(platform, service: str, *statements: str) -> None:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.platform
def test_a_registration_refused_by_the_database_after_its_first_writes_leaves_nothing(platform):
    """The participant row is written before its needs; a need the database refuses (a real
    constraint, a trigger here) makes the answer 409, with no participant, no audit entry and
    no event left behind."""
    marker = f"refused-{uuid.uuid4().hex[:8]}"
    if platform.database_urls["intake"].startswith("postgresql"):
        create = [
            "CREATE OR REPLACE FUNCTION uow_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION USING ERRCODE = '23514', MESSAGE = 'need refused'; END $$ "
            "LANGUAGE plpgsql",
            f"CREATE TRIGGER uow_refuse BEFORE INSERT ON needs FOR EACH ROW "
            f"WHEN (NEW.note = '{marker}') EXECUTE FUNCTION uow_refuse()",
        ]
        drop = ["DROP TRIGGER uow_refuse ON needs", "DROP FUNCTION uow_refuse()"]
    else:
        create = [f"CREATE TRIGGER uow_refuse BEFORE INSERT ON needs "
                  f"WHEN NEW.note = '{marker}' BEGIN SELECT RAISE(ABORT, 'need refused'); END"]
        drop = ["DROP TRIGGER uow_refuse"]
    jmd = platform.as_user("cw.jmd-leverkusen")
    counts = ("SELECT count(*) FROM participants", "SELECT count(*) FROM audit_log",
              "SELECT count(*) FROM outbox")
    _execute(platform, "intake", *create)
    try:
        before = [_count(platform, "intake", sql) for sql in counts]
        response = jmd.post("/api/v1/participants", json=person(
            needs=[{"category": "language_course", "note": marker}]))
        assert response.status_code == 409, response.text
        assert response.json()["code"] == 409
        assert [_count(platform, "intake", sql) for sql in counts] == before
    finally:
        _execute(platform, "intake", *drop)
    assert jmd.post("/api/v1/participants", json=person(
        needs=[{"category": "language_course", "note": marker}])).status_code == 201


@pytest.mark.platform
def test_a_4xx_answer_keeps_nothing_the_request_wrote_before_its_view(platform):
    """Notifications remembers a caller's address before the view runs; when the view answers
    404 that write goes too, and with the next good request it is kept."""
    forge = TokenForge(platform)
    subject = str(uuid.uuid4())
    token = forge.sign(forge.like("cw.jmd-leverkusen", sub=subject,
                                  email=f"{subject[:8]}@example.org"))
    url = f"{platform.gateway_url}/api/v1/notifications"
    headers = {"Authorization": f"Bearer {token}"}
    missing = requests.post(f"{url}/{uuid.uuid4()}/read", headers=headers, timeout=10)
    assert missing.status_code == 404, missing.text
    staff = "SELECT count(*) FROM staff_members WHERE sub = :sub"
    assert _count(platform, "notifications", staff, sub=subject) == 0
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    assert _count(platform, "notifications", staff, sub=subject) == 1


def _referrals_in_process(platform):
    from referrals.app import create_app

    settings = ServiceSettings(
        name="referrals", database_url=platform.database_urls["referrals"],
        redis_url=platform.redis_url, oidc=settings_for(platform),
        client_id="referrals-service", client_secret="demo-referrals-secret",
        service_urls=platform.service_urls, http_timeout_seconds=5.0,
        relay_interval_seconds=1.0,
    )
    return create_app(settings)


class Statements:
    """Counts the statements an engine runs (SQLAlchemy's cursor event), but the outbox relay's
    after the commit: it publishes whatever is pending on the shared platform, once per
    transaction, not per row shown. Nor SQLite's ``BEGIN IMMEDIATE``: the relay opens a second
    transaction only when the platform's own sweep has not published the row before it, so
    counting it made the figure depend on that race (6 against 7, once in a full run)."""

    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)
        self.engine = engine

    def _seen(self, _conn, _cursor, statement: str, *_args) -> None:
        flat = " ".join(statement.split()).upper()
        if flat.startswith(("UPDATE OUTBOX", "BEGIN")) or (flat.startswith("SELECT")
                                                 and "FROM OUTBOX" in flat):
            return
        self.count += 1

    def during(self, action) -> tuple[int, object]:
        before = self.count
        result = action()
        return self.count - before, result

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.mark.platform
def test_lists_of_50_referrals_or_appointments_cost_the_queries_of_5_and_one_audit_event(
        platform):
    from referrals.appointment.models import Appointment
    from referrals.referral.models import REQUESTED, Referral

    app = _referrals_in_process(platform)
    runtime = app.extensions["buendnis"]
    participant_id = uuid.uuid4()
    now = utcnow()
    # a week of its own, decades ahead, for the appointments (one on each referral)
    week = now.replace(year=2080 + uuid.uuid4().int % 15)
    with runtime.db.transaction() as session:
        for index in range(50):
            at = now - timedelta(minutes=index)
            referral_id = uuid.uuid4()
            session.add(Referral(
                id=referral_id, participant_id=participant_id, pseudonym="TN-UOW50",
                from_org="jmd-leverkusen", to_org="caritas-leverkusen",
                alliance="leverkusen", need_category="language_course", status=REQUESTED,
                shared_categories=[], snapshot={}, sender_user="cw.jmd-leverkusen",
                sender_user_id="uow-test", created_at=at, updated_at=at,
                due_at=at + timedelta(days=5)))
            session.flush()  # the referral before its appointment (foreign key)
            start = week + timedelta(hours=index)
            session.add(Appointment(
                referral_id=referral_id, start=start, end=start + timedelta(minutes=30),
                mode="phone", booked_by_org="jmd-leverkusen", booked_by="cw.jmd-leverkusen",
                version=1))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}",
               "X-Request-ID": f"uow-{uuid.uuid4().hex[:10]}"}
    statements = Statements(runtime.db.engine)
    try:
        def page(size: int):
            return client.get("/api/v1/referrals", headers=headers, query_string={
                "participant_id": str(participant_id), "page_size": size})

        def appointments(size: int):
            return client.get("/api/v1/appointments", headers=headers, query_string={
                "from": week.isoformat(), "to": (week + timedelta(days=3)).isoformat(),
                "page_size": size})

        small, answer5 = statements.during(lambda: page(5))
        large, answer50 = statements.during(lambda: page(50))
        booked5_cost, booked5 = statements.during(lambda: appointments(5))
        booked50_cost, booked50 = statements.during(lambda: appointments(50))
    finally:
        statements.close()
    assert answer5.status_code == 200 and len(answer5.json) == 5
    assert answer50.status_code == 200 and len(answer50.json) == 50
    assert large == small, f"5 rows: {small} statements, 50 rows: {large}"
    assert booked5.status_code == 200 and len(booked5.json) == 5, booked5.get_data(as_text=True)
    assert booked50.status_code == 200 and len(booked50.json) == 50
    assert booked50_cost == booked5_cost, f"5: {booked5_cost}, 50: {booked50_cost}"
    print(f"statements per list: referrals {small}, appointments {booked5_cost} (5 or 50 rows)")
    # One audit event for the page of 50, naming each referral and its participant.
    (event,) = [data for data in _audit_events(platform, "referrals", headers["X-Request-ID"])
                if data["action"] == "referral.list"
                and len(data.get("participant_ids") or []) == 50]
    assert sorted(event["record_ids"]) == sorted(r["id"] for r in answer50.json)
    app.extensions["buendnis"].db.dispose()


@pytest.mark.platform
def test_a_list_of_50_participants_costs_the_queries_of_a_list_of_5(platform):
    from intake.app import create_app
    from intake.participant import schemas
    from intake.participant import service as participants

    settings = ServiceSettings(
        name="intake", database_url=platform.database_urls["intake"],
        redis_url=platform.redis_url, oidc=settings_for(platform), client_id="intake-service",
        client_secret="demo-intake-secret", service_urls=platform.service_urls,
        http_timeout_seconds=5.0, relay_interval_seconds=1.0)
    app = create_app(settings)
    runtime = app.extensions["buendnis"]
    owner = Principal(subject="uow-test", username="cw.jmd-leverkusen", client_id="test",
                      roles=frozenset({"case_worker"}), org_alias="jmd-leverkusen",
                      alliance="leverkusen")
    family = f"Uow{uuid.uuid4().hex[:6]}"
    rows = [person(family_name=family, given_name=f"N{n}") for n in range(50)]
    loaded = schemas.ParticipantCreate(many=True).load(rows)
    with runtime.db.transaction() as session:
        participants.register_many(runtime=runtime, session=session, principal=owner,
                                   rows=loaded, in_worker=True)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"}
    statements = Statements(runtime.db.engine)
    try:
        def page(size: int):
            return client.get("/api/v1/participants", headers=headers,
                              query_string={"q": family, "page_size": size})

        small, answer5 = statements.during(lambda: page(5))
        large, answer50 = statements.during(lambda: page(50))
    finally:
        statements.close()
        runtime.db.dispose()
    assert answer5.status_code == 200 and len(answer5.json) == 5, answer5.get_data(as_text=True)
    assert answer50.status_code == 200 and len(answer50.json) == 50
    assert large == small, f"5 rows: {small} statements, 50 rows: {large}"
    print(f"statements per list: participants {small} (5 or 50 rows)")


def _audit_events(platform, service: str, request_id: str) -> list[dict]:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT data FROM outbox WHERE type = 'audit.recorded' ORDER BY seq DESC "
                "LIMIT 500")).all()
    finally:
        engine.dispose()
    found = []
    for (data,) in rows:
        payload = data if isinstance(data, dict) else json.loads(data)
        if payload.get("request_id") == request_id:
            found.append(payload)
    return found


@pytest.mark.platform
def test_a_list_of_participants_is_one_audit_event_and_reaches_the_trail(platform):
    """Through the gateway: the page is audited by one event; the gateway's trail shows the
    read for each participant on it, as the auditor reads it."""
    jmd = platform.as_user("cw.jmd-leverkusen")
    created = [jmd.post("/api/v1/participants", json=person(given_name=f"Liste{n}")).json()
               for n in range(3)]
    request_id = f"uow-list-{uuid.uuid4().hex[:8]}"
    page = jmd.get("/api/v1/participants", params={"page_size": 3},
                   headers={"X-Request-ID": request_id})
    assert page.status_code == 200
    shown = [p["id"] for p in page.json()]
    assert sorted(shown) == sorted(p["id"] for p in created)
    events = _audit_events(platform, "intake", request_id)
    assert len(events) == 1 and sorted(events[0]["participant_ids"]) == sorted(shown)
    auditor = platform.as_user("audit.jmd-leverkusen")
    for participant_id in shown:
        entries = wait_for(lambda pid=participant_id: [
            e for e in auditor.get("/api/v1/audit", params={"participant_id": pid}).json()
            if e["action"] == "participant.list"] or None, timeout=30,
            what="the list read reaching the trail")
        assert entries[0]["actor"] == "cw.jmd-leverkusen"


@pytest.mark.platform
def test_a_snapshot_dropped_on_read_reaches_the_trail_like_every_entry(platform):
    """``referral.snapshot.drop`` goes the way of every audit record: to the gateway's trail."""
    from tests.referrals.conftest import grant, refer, register

    jmd = platform.as_user("cw.jmd-leverkusen")
    caritas = platform.as_user("cw.caritas-leverkusen")
    participant = register(jmd)
    consent = grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    referral = refer(jmd, participant["id"]).json()
    assert jmd.delete(f"/api/v1/participants/{participant['id']}/consents/"
                      f"{consent['id']}").status_code == 204
    wait_for(lambda: caritas.get(f"/api/v1/referrals/{referral['id']}").json()
             .get("snapshot_dropped_reason"), timeout=30, what="the snapshot dropped")
    auditor = platform.as_user("audit.jmd-leverkusen")
    entries = wait_for(lambda: [
        e for e in auditor.get("/api/v1/audit", params={"participant_id": participant["id"]})
        .json() if e["action"] == "referral.snapshot.drop"] or None, timeout=30,
        what="referral.snapshot.drop in the trail")
    assert entries[0]["source"] == "referrals"
    assert entries[0]["actor"] == "system"


def test_outside_a_unit_there_is_nothing_to_hook_into():
    """Outside a request, a handler or a task there is no unit to add a hook to."""
    with pytest.raises(RuntimeError, match="no unit of work"):
        unit_of_work.after_commit(lambda: None)
