"""A referral not answered within the alliance's response time (default five working days,
weekends and NRW public holidays not counted) is marked overdue once, and its sender is told
through ``referral.overdue``."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from buendnis_common.settings import ServiceSettings
from referrals.app import create_app
from referrals.referral import handlers
from referrals.referral.models import Referral
from referrals.referral.service import due_for
from referrals.workdays import WorkingCalendar
from tests.referrals.conftest import events_of

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# -- the working-day calculation --------------------------------------------------------------

@pytest.mark.parametrize(("sent", "days", "due"), [
    # An ordinary week: Friday to Friday.
    (berlin(2026, 11, 20, 15, 0), 5, berlin(2026, 11, 27, 15, 0)),
    # Sent on a Saturday: the weekend does not count.
    (berlin(2026, 11, 21, 10, 0), 5, berlin(2026, 11, 27, 10, 0)),
    # Maundy Thursday: Good Friday, the weekend and Easter Monday do not count.
    (berlin(2026, 4, 2, 10, 0), 5, berlin(2026, 4, 13, 10, 0)),
    # Across the change to summer time and Easter: 10:00 stays 10:00 local time.
    (berlin(2026, 3, 27, 10, 0), 5, berlin(2026, 4, 7, 10, 0)),
    # Christmas: the 25th and 26th are holidays, the 24th and 31st are working days.
    (berlin(2026, 12, 23, 9, 0), 5, berlin(2026, 12, 31, 9, 0)),
    # Corpus Christi is a holiday in North Rhine-Westphalia.
    (berlin(2026, 6, 3, 12, 0), 1, berlin(2026, 6, 5, 12, 0)),
    # New Year's Day, then a weekend.
    (berlin(2026, 12, 31, 16, 30), 1, berlin(2027, 1, 4, 16, 30)),
])
def test_working_days_skip_weekends_and_nrw_holidays(sent, days, due):
    assert WorkingCalendar("NW").add_working_days(sent, days) == due.astimezone(UTC)


def test_the_holidays_are_those_of_north_rhine_westphalia():
    corpus_christi_eve = berlin(2026, 6, 3, 12, 0)
    assert WorkingCalendar("NW").add_working_days(corpus_christi_eve, 1).day == 5
    # Berlin works on Corpus Christi: the subdivision matters.
    assert WorkingCalendar("BE").add_working_days(corpus_christi_eve, 1).day == 4


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="offset"):
        WorkingCalendar().add_working_days(datetime(2026, 4, 2, 10, 0), 5)


# -- the sweep, with a frozen clock -----------------------------------------------------------

def send(app, *, sent_at: datetime, alliance: str = "leverkusen",
         status: str = "requested") -> uuid.UUID:
    ctx = app.extensions["referrals"]
    referral = Referral(
        id=uuid.uuid4(), participant_id=uuid.uuid4(), pseudonym="TN-ABCDE",
        from_org="jmd-leverkusen", to_org="caritas-leverkusen", alliance=alliance,
        need_category="language_course", status=status, shared_categories=[],
        sender_user="cw.jmd-leverkusen", sender_user_id=str(uuid.uuid4()),
        created_at=sent_at, updated_at=sent_at,
        due_at=due_for(ctx=ctx, alliance=alliance, sent_at=sent_at),
    )
    with ctx.runtime.db.transaction() as session:
        session.add(referral)
    return referral.id


def overdue_events(app) -> list[dict]:
    runtime = app.extensions["buendnis"]
    with runtime.db.transaction() as session:
        rows = session.scalars(
            runtime.models.outbox.__table__.select()
            .where(runtime.models.outbox.type == "referral.overdue")
            .with_only_columns(runtime.models.outbox.data)
        ).all()
    return [row if isinstance(row, dict) else json.loads(row) for row in rows]


def stored(app, referral_id: uuid.UUID) -> Referral:
    with app.extensions["buendnis"].db.transaction() as session:
        return session.get(Referral, referral_id)


def test_a_referral_sent_before_easter_is_overdue_only_after_five_working_days(referrals_app):
    runtime = referrals_app.extensions["buendnis"]
    referral_id = send(referrals_app, sent_at=berlin(2026, 4, 2, 10, 0))
    assert stored(referrals_app, referral_id).due_at == berlin(2026, 4, 13, 10, 0)

    # A week later by the calendar, but only four working days.
    assert handlers.mark_overdue(runtime, now=berlin(2026, 4, 10, 18, 0)) == 0
    assert handlers.mark_overdue(runtime, now=berlin(2026, 4, 13, 9, 59)) == 0
    assert stored(referrals_app, referral_id).overdue_at is None
    assert overdue_events(referrals_app) == []

    assert handlers.mark_overdue(runtime, now=berlin(2026, 4, 13, 10, 0)) == 1
    assert stored(referrals_app, referral_id).overdue is True
    # The next sweeps find nothing new: the sender is told once.
    assert handlers.mark_overdue(runtime, now=berlin(2026, 4, 14, 10, 0)) == 0
    assert handlers.mark_overdue(runtime, now=berlin(2026, 5, 1, 10, 0)) == 0
    (event,) = overdue_events(referrals_app)
    assert event["referral_id"] == str(referral_id)
    assert event["from_org"] == "jmd-leverkusen"
    assert datetime.fromisoformat(event["due_at"]) == berlin(2026, 4, 13, 10, 0)


def test_an_answered_referral_is_never_overdue(referrals_app):
    runtime = referrals_app.extensions["buendnis"]
    for status in ("accepted", "rejected", "cancelled"):
        send(referrals_app, sent_at=berlin(2026, 4, 2, 10, 0), status=status)
    assert handlers.mark_overdue(runtime, now=berlin(2026, 6, 1, 10, 0)) == 0
    assert overdue_events(referrals_app) == []


def test_the_response_time_is_set_per_alliance(referrals_app):
    runtime = referrals_app.extensions["buendnis"]
    neuss = send(referrals_app, sent_at=berlin(2026, 4, 2, 10, 0), alliance="rhein-kreis-neuss")
    assert stored(referrals_app, neuss).due_at == berlin(2026, 4, 8, 10, 0)
    assert handlers.mark_overdue(runtime, now=berlin(2026, 4, 8, 10, 0)) == 1


def test_the_beat_runs_the_sweep(referrals_app):
    celery = referrals_app.extensions["celery"]
    entry = celery.conf.beat_schedule["mark-overdue-referrals"]
    assert entry["task"] == handlers.MARK_OVERDUE_TASK
    assert entry["schedule"] == timedelta(seconds=300)
    referral_id = send(referrals_app, sent_at=datetime.now(UTC) - timedelta(days=30))
    celery.tasks[handlers.MARK_OVERDUE_TASK].apply()
    assert stored(referrals_app, referral_id).overdue is True


# -- through the gateway ----------------------------------------------------------------------

@pytest.mark.platform
def test_the_sender_sees_the_referral_overdue_after_the_sweep(consented_referral, jmd, caritas,
                                                             platform):
    from tests.test_token_verifier import settings_for

    _participant, referral = consented_referral
    sent_at = datetime.fromisoformat(referral["created_at"])
    due_at = datetime.fromisoformat(referral["due_at"])
    assert due_at == WorkingCalendar("NW").add_working_days(sent_at, 5)
    assert referral["overdue"] is False

    settings = ServiceSettings(
        name="referrals", database_url=platform.database_urls["referrals"],
        redis_url=platform.redis_url, oidc=settings_for(platform),
        client_id="referrals-service", client_secret="demo-referrals-secret",
        service_urls=platform.service_urls, http_timeout_seconds=1.0,
        relay_interval_seconds=1.0,
    )
    app = create_app(settings)
    runtime = app.extensions["buendnis"]
    try:
        handlers.mark_overdue(runtime, now=due_at - timedelta(seconds=1))
        assert jmd.get(f"/api/v1/referrals/{referral['id']}").json()["overdue"] is False
        handlers.mark_overdue(runtime, now=due_at + timedelta(seconds=1))
        handlers.mark_overdue(runtime, now=due_at + timedelta(days=1))
    finally:
        runtime.db.dispose()

    seen = jmd.get(f"/api/v1/referrals/{referral['id']}").json()
    assert seen["overdue"] is True and seen["overdue_at"] is not None
    listed = jmd.get("/api/v1/referrals", params={"box": "sent", "overdue": "true",
                                                  "page_size": 100}).json()
    assert referral["id"] in [item["id"] for item in listed]
    assert len(events_of(platform, "referral.overdue", referral_id=referral["id"])) == 1

    # Once the receiver answers, it is no longer overdue.
    caritas.post(f"/api/v1/referrals/{referral['id']}/status", json={"status": "accepted"})
    assert jmd.get(f"/api/v1/referrals/{referral['id']}").json()["overdue"] is False
