"""The pre-aggregated figures (``referrals.report.aggregate``) against a full recount, after a
story of everything that happens to referrals: made, answered, accepted, closed, marked
overdue, withdrawn consents and erased persons, deleted, changed and rolled back, written by SQL
behind the ORM's back, and a database that held referrals before the aggregate existed.

Two recounts: one here in plain Python from the referrals (the stored totals, persons, key sums
and medians must equal it exactly), and the reports' own recount (``recount=True``): every
report the aggregate serves must show exactly the figures the recount shows."""
from __future__ import annotations

import random
import statistics
import threading
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from buendnis_common import migrate
from buendnis_common.db import make_engine
from referrals.referral.models import Referral
from referrals.report import aggregate, service
from referrals.report.__main__ import main as report_command
from referrals.report.models import PersonKey
from tests.reports.conftest import referral

ALLIANCES = ("leverkusen", "rhein-kreis-neuss", "bonn")
CATEGORIES = ("language_course", "housing", "employment")
STATUSES = ("requested", "accepted", "rejected", "cancelled", "in-progress", "on-hold",
            "completed", "failed")
CLOSED = {"rejected", "cancelled", "completed", "failed"}
START = datetime(2025, 11, 3, 8, tzinfo=UTC)
LOW = service.Disclosure(min_cell=2)


# -- the recount here -------------------------------------------------------------------------

def true_figures(session: Session) -> tuple[dict, dict, dict]:
    """Per alliance the totals, per (alliance, category) the open referrals, per alliance the
    median hours to the first answer — counted here from every referral."""
    people: dict[tuple, Counter] = defaultdict(Counter)
    keys: dict[tuple, int] = {}
    open_people: dict[tuple, int] = defaultdict(int)
    hours: dict[str, list[float]] = defaultdict(list)
    for r in session.scalars(select(Referral).execution_options(populate_existing=True)):
        answered = r.answered_at is not None
        accepted = r.status in ("accepted", "in-progress", "on-hold", "completed", "failed") or (
            r.status == "cancelled" and answered and r.answered_at < r.closed_at)
        person = (r.alliance, r.participant_id)
        keys[person] = r.person_key
        people[person].update({
            "referrals": 1, "answered": answered, "accepted": accepted,
            "ended": accepted and r.status in CLOSED, "completed": r.status == "completed",
            "overdue": r.overdue_at is not None and r.status == "requested",
            "closed": r.status in CLOSED})
        if r.status in ("requested", "accepted", "in-progress", "on-hold"):
            open_people[(r.alliance, r.need_category, r.participant_id)] += 1
        if answered:
            hours[r.alliance].append((r.answered_at - r.created_at).total_seconds() / 3600)
    totals: dict[str, Counter] = defaultdict(Counter)
    for (alliance, _pid), counts in people.items():
        key = keys[(alliance, _pid)]
        total = totals[alliance]
        for part in aggregate.PARTS:
            total[part] += counts[part]
            if counts[part]:
                total[f"{part}_persons"] += 1
                total[f"{part}_key_sum"] += key
        if counts["closed"] >= 2 and not counts["completed"]:
            total["stuck_persons"] += 1
            total["stuck_key_sum"] += key
    opened: dict[tuple, Counter] = defaultdict(Counter)
    for (alliance, category, pid), count in open_people.items():
        opened[(alliance, category)].update(
            {"open_referrals": count, "persons": 1, "key_sum": keys[(alliance, pid)]})
    medians = {alliance: statistics.median(values) for alliance, values in hours.items()}
    return ({a: dict(+t) for a, t in totals.items()},
            {k: dict(+c) for k, c in opened.items()}, medians)


def stored_figures(session: Session) -> tuple[dict, dict, dict]:
    def figures(row, names):
        return {name: getattr(row, name) for name in names if getattr(row, name)}

    alliance_columns = [c.name for c in aggregate.AllianceTotal.__table__.columns][1:]
    totals = {row.alliance: figures(row, alliance_columns)
              for row in aggregate.alliance_totals(session, None)}
    opened = {(row.alliance, row.need_category):
              figures(row, ("open_referrals", "persons", "key_sum"))
              for row in aggregate.open_referral_totals(session, None)}
    medians = aggregate.median_hours(session, {a: t.get("answered", 0)
                                               for a, t in totals.items()})
    return totals, opened, medians


def assert_equal_to_recount(session: Session) -> None:
    session.commit()
    assert aggregate.is_built(session)
    assert stored_figures(session) == true_figures(session)
    for disclosure in (LOW, service.Disclosure()):
        for alliance in (None, *ALLIANCES):
            for report in (service.referrals_report, service.gaps_report,
                           service.stuck_report):
                kept = report(session=session, alliance=alliance, disclosure=disclosure)
                counted = report(session=session, alliance=alliance, disclosure=disclosure,
                                 recount=True)
                assert kept.rows == counted.rows, (report.__name__, alliance)


# -- the story --------------------------------------------------------------------------------

def made(rng: random.Random, persons: list[uuid.UUID], n: int) -> list[Referral]:
    rows = []
    for _ in range(n):
        rows.append(referral(
            status="requested", alliance=rng.choice(ALLIANCES),
            need_category=rng.choice(CATEGORIES), participant_id=rng.choice(persons),
            to_org=f"org-{rng.randrange(4)}",
            created_at=START + timedelta(hours=rng.randrange(2000),
                                         seconds=rng.randrange(3600))))
    return rows


def step(rng: random.Random, r: Referral) -> None:
    """One move of the state machine, as ``change_status`` and ``mark_overdue`` make it."""
    at = r.created_at + timedelta(hours=rng.randrange(1, 300), minutes=rng.randrange(60))
    if r.status == "requested":
        move = rng.choice(["accepted", "rejected", "cancelled", "overdue"])
        if move == "overdue":
            r.overdue_at = r.overdue_at or at
            return
        if move != "cancelled":  # the receiver answers; the sender's cancellation is no answer
            r.answered_at = r.answered_at or at
    elif r.status in ("accepted", "in-progress", "on-hold"):
        move = rng.choice(["in-progress", "on-hold", "completed", "failed", "cancelled"])
    else:
        return
    r.status = move
    r.updated_at = at
    if move in CLOSED:
        r.closed_at = max(at, r.answered_at or at) + timedelta(hours=1)


def test_the_aggregate_equals_a_full_recount_after_a_mixed_story(session):
    rng = random.Random(20261202)
    persons = [uuid.uuid4() for _ in range(40)]
    session.add_all(made(rng, persons, 150))
    assert_equal_to_recount(session)

    everyone = list(session.scalars(select(Referral)))
    for _ in range(400):
        step(rng, rng.choice(everyone))
    assert_equal_to_recount(session)

    # Many flushes in one transaction, then more referrals of the same persons.
    for r in rng.sample(everyone, 30):
        step(rng, r)
        session.flush()
    session.add_all(made(rng, persons[:10], 40))
    assert_equal_to_recount(session)

    # A transaction rolled back takes its changes to the aggregate with it.
    before = stored_figures(session)
    for r in rng.sample(everyone, 30):
        step(rng, r)
    session.add_all(made(rng, persons, 10))
    session.flush()
    assert stored_figures(session) != before
    session.rollback()
    assert stored_figures(session) == before
    assert_equal_to_recount(session)

    # A consent withdrawn, a person erased (their referrals as ``drop_for_withdrawn_consent``
    # and ``erase_participant`` leave them): the referrals still count, unchanged.
    now = datetime.now(UTC)
    for r in session.scalars(select(Referral).where(Referral.participant_id.in_(persons[:2]))):
        r.snapshot, r.shared_categories = None, []
        r.snapshot_dropped_at, r.updated_at = now, now
        r.snapshot_dropped_reason = ("consent_withdrawn" if r.participant_id == persons[0]
                                     else "participant_erased")
        if r.participant_id == persons[1]:
            r.pseudonym = r.note = None
    session.commit()
    before = stored_figures(session)
    assert_equal_to_recount(session)
    assert stored_figures(session) == before

    # Referrals deleted: persons leave their cells when their last referral goes.
    for r in session.scalars(select(Referral).where(Referral.participant_id.in_(persons[2:6]))):
        session.delete(r)
    assert_equal_to_recount(session)


def test_rows_written_behind_the_orms_back_are_taken_in_by_a_rebuild(session):
    rng = random.Random(7)
    persons = [uuid.uuid4() for _ in range(12)]
    session.add_all(made(rng, persons, 40))
    assert_equal_to_recount(session)
    # A bulk load by SQL: the aggregate does not see it (and so disagrees with the recount) …
    loaded = made(rng, persons + [uuid.uuid4() for _ in range(5)], 30)
    keys = {r.participant_id: r.person_key for r in session.scalars(select(Referral))}
    for r in loaded:
        step(rng, r)
        keys.setdefault(r.participant_id, rng.getrandbits(32))
    session.execute(insert(Referral), [
        {column: getattr(r, column) for column in (
            "participant_id", "pseudonym", "from_org", "to_org", "alliance", "need_category",
            "status", "sender_user", "sender_user_id", "created_at", "updated_at", "due_at",
            "overdue_at", "answered_at", "closed_at")}
        | {"id": uuid.uuid4(), "shared_categories": [], "version": 1,
           "person_key": keys[r.participant_id]} for r in loaded])
    session.commit()
    assert stored_figures(session) != true_figures(session)
    # … until it is rebuilt.
    counted = aggregate.rebuild(session)
    assert counted["persons"] == len({(r.alliance, r.participant_id)
                                      for r in session.scalars(select(Referral))})
    assert_equal_to_recount(session)


def test_a_database_with_referrals_from_before_is_counted_once_rebuilt(database_url, capsys):
    """Referrals made before the aggregate's migration: the reports count them from the
    referrals until ``python -m referrals.report rebuild`` has run, then read the aggregate."""
    migrate.upgrade("referrals", database_url, "0008")
    rng = random.Random(11)
    engine = create_engine(database_url)
    persons = [uuid.uuid4() for _ in range(15)]
    rows = made(rng, persons, 60)
    for r in rows:
        for _ in range(3):
            step(rng, r)
    keys = {pid: rng.getrandbits(32) for pid in persons}
    with engine.begin() as connection:
        connection.execute(insert(Referral), [
            {column: getattr(r, column) for column in (
                "participant_id", "from_org", "to_org", "alliance", "need_category", "status",
                "sender_user", "sender_user_id", "created_at", "updated_at", "due_at",
                "overdue_at", "answered_at", "closed_at")}
            | {"id": uuid.uuid4(), "shared_categories": [], "version": 1,
               "person_key": keys[r.participant_id]} for r in rows])
        connection.execute(insert(PersonKey), [
            {"participant_id": pid, "record_key": key} for pid, key in keys.items()])
    migrate.upgrade("referrals", database_url)
    with Session(engine) as session:
        assert not aggregate.is_built(session)
        before = service.referrals_report(session=session, alliance=None, disclosure=LOW)
        assert [row["alliance"] for row in before.rows] == sorted(
            {r.alliance for r in rows})
        # Changes made before the rebuild are not folded in (nothing half-counted) …
        session.add(referral(status="requested", alliance="bonn", participant_id=persons[0]))
        session.commit()
        assert aggregate.alliance_totals(session, None) == []

    assert report_command(["rebuild", "--database-url", database_url]) == 0
    printed = capsys.readouterr().out
    assert "rebuilt" in printed and str(persons[0]) not in printed
    with Session(engine) as session:
        assert_equal_to_recount(session)
        # … and after it, every change is.
        session.add_all(made(rng, persons, 20))
        assert_equal_to_recount(session)
    engine.dispose()


def test_one_person_referred_at_the_same_moment_in_many_transactions_is_one_person(
        session, database_url):
    """Transactions that each add a referral of the same new person at once: the person is
    counted once, their referrals all (the membership row's upsert serialises them)."""
    engine = make_engine(database_url)
    person, writers = uuid.uuid4(), 6
    ready = threading.Barrier(writers)
    failures = []

    def write() -> None:
        try:
            with Session(engine) as own:
                own.add(referral(status="requested", alliance="bonn", participant_id=person))
                ready.wait(timeout=30)
                own.commit()
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert failures == []
    (bonn,) = aggregate.alliance_totals(session, "bonn")
    assert (bonn.referrals, bonn.referrals_persons) == (writers, 1)
    assert_equal_to_recount(session)


@pytest.mark.parametrize("answered", [1, 2, 5, 6])
def test_the_median_is_the_recounts_for_odd_and_even_counts(session, answered):
    times = [0.5, 3.25, 3.75, 26.0, 26.0, 400.1][:answered]
    session.add_all(referral(status="accepted", alliance="bonn", answered_after_hours=h)
                    for h in times)
    session.commit()
    assert aggregate.median_hours(session, {"bonn": answered}) == {
        "bonn": statistics.median(times)}
    assert_equal_to_recount(session)
