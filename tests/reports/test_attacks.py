"""Attacks on the reports' disclosure control, performed: a reader who subtracts reports of
overlapping periods or different groupings, or fills a cell with one person's referrals, must
not learn a small figure exactly; the same question gets the same answer every time.

The record keys are drawn from a seeded generator here (the platform draws them from the
system's CSPRNG), so that every run sees the same noise; any seed would do."""
from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from referrals.report import ckm, service
from referrals.report import models as report_models
from tests.reports.conftest import referral

D = service.Disclosure().max_deviation
MIN_CELL = service.Disclosure().min_cell
ORGS = [f"org-{n:02}" for n in range(40)]


@pytest.fixture
def seeded_keys(monkeypatch):
    generator = random.Random(20261202)
    monkeypatch.setattr(report_models, "new_record_key",
                        lambda: generator.getrandbits(ckm.KEY_BITS))


def day(year: int, month: int) -> datetime:
    return datetime(year, month, 10, 9, tzinfo=UTC)


def people(count: int, *, when: datetime, alliance: str = "testland", to_org: str = "org-00",
           **kwargs) -> list:
    """``count`` different persons, one referral each."""
    return [referral(status="requested", alliance=alliance, to_org=to_org, created_at=when,
                     **kwargs) for _ in range(count)]


def by_org(session, start: date, end: date, *, alliance: str = "testland") -> dict:
    report = service.referrals_report(session=session, alliance=alliance, start=start, end=end,
                                      group_by=["to_org"])
    return {row["to_org"]: row["count"] for row in report.rows}


@pytest.fixture
def months(session, seeded_keys):
    """Forty receivers; each got a small number (1–4 persons) in December 2025 and in March
    2026, and six persons in January and in February. Returns the true small figures."""
    december, march = {}, {}
    for n, org in enumerate(ORGS):
        december[org], march[org] = 1 + n % 4, 1 + (n // 4) % 4
        session.add_all(people(december[org], when=day(2025, 12), to_org=org))
        session.add_all(people(6, when=day(2026, 1), to_org=org))
        session.add_all(people(6, when=day(2026, 2), to_org=org))
        session.add_all(people(march[org], when=day(2026, 3), to_org=org))
    session.commit()
    return session, december, march


def assert_not_recovered(estimates: dict, truths: dict) -> None:
    """The attacker's estimates against the truth: never reliably right. With the noise of two
    cells of variance V each, an estimate hits the truth by chance about one time in five;
    without noise it would every time."""
    errors = Counter(estimates[org] - truths[org] for org in truths)
    exact = errors[0] / len(truths)
    assert exact <= 0.4, f"{exact:.0%} of the hidden cells recovered exactly: {errors}"
    # the errors are spread over several values: the attacker cannot tell the exact ones
    assert len(errors) >= 4, errors
    assert all(abs(error) <= 2 * D for error in errors)


def test_period_moved_at_the_end_does_not_give_the_month(months):
    """January–March minus January–February: March's hidden cells."""
    session, _december, march = months
    alone = by_org(session, date(2026, 3, 1), date(2026, 3, 31))
    assert all(alone[org] is None for org in ORGS), "March's small cells must be hidden"
    long = by_org(session, date(2026, 1, 1), date(2026, 3, 31))
    short = by_org(session, date(2026, 1, 1), date(2026, 2, 28))
    assert_not_recovered({org: long[org] - short[org] for org in ORGS}, march)


def test_period_moved_at_the_start_does_not_give_the_month(months):
    """December–February minus January–February: December's hidden cells."""
    session, december, _march = months
    alone = by_org(session, date(2025, 12, 1), date(2025, 12, 31))
    assert all(alone[org] is None for org in ORGS)
    long = by_org(session, date(2025, 12, 1), date(2026, 2, 28))
    short = by_org(session, date(2026, 1, 1), date(2026, 2, 28))
    assert_not_recovered({org: long[org] - short[org] for org in ORGS}, december)


def test_whole_years_leave_no_month_to_subtract(months):
    """With REPORT_PERIOD_MONTHS=12 both periods of the attack are the same year: the
    difference is zero, and the month's cells are only ever seen inside the year's."""
    session, _december, _march = months
    yearly = service.Disclosure(period_months=12)
    long, short = (
        {row["to_org"]: row["count"] for row in service.referrals_report(
            session=session, alliance="testland", start=date(2026, 1, 1), end=end,
            group_by=["to_org"], disclosure=yearly).rows}
        for end in (date(2026, 3, 31), date(2026, 2, 28)))
    assert long == short


def test_another_grouping_does_not_give_the_hidden_cell(session, seeded_keys):
    """An alliance's total minus the visible cells of the report grouped by receiver (and by
    need category) — the hidden cell, if the total and the cells were exact."""
    truths, from_receivers, from_needs = {}, {}, {}
    for n in range(40):
        alliance, small = f"land-{n:02}", 1 + n % 4
        truths[alliance] = small
        session.add_all(people(6, when=day(2026, 3), alliance=alliance, to_org="org-a",
                               need_category="housing"))
        session.add_all(people(7, when=day(2026, 3), alliance=alliance, to_org="org-b",
                               need_category="employment"))
        session.add_all(people(small, when=day(2026, 3), alliance=alliance, to_org="org-c",
                               need_category="health"))
    session.commit()
    march = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    for alliance in truths:
        (total,) = service.referrals_report(session=session, alliance=alliance, **march).rows
        for grouping, estimates in (("to_org", from_receivers), ("need_category", from_needs)):
            rows = service.referrals_report(session=session, alliance=alliance,
                                            group_by=[grouping], **march).rows
            hidden = [row for row in rows if row["count"] is None]
            assert len(hidden) == 1 and "count" in hidden[0]["suppressed"]
            estimates[alliance] = total["count"] - sum(
                row["count"] for row in rows if row["count"] is not None)
    assert_not_recovered(from_receivers, truths)
    assert_not_recovered(from_needs, truths)


def test_one_person_with_many_referrals_never_fills_a_cell(session, seeded_keys):
    """Six referrals of one person are one person: the cell, its overdue count, and the rates
    and median resting on that person are hidden, however many referrals there are."""
    one = uuid.uuid4()
    march = day(2026, 3)
    session.add_all([referral(status="requested", to_org="org-x", participant_id=one,
                              created_at=march, overdue=True) for _ in range(6)])
    # five people at org-y; only one of them was answered, six times
    answered = uuid.uuid4()
    session.add_all([referral(status="completed", to_org="org-y", participant_id=answered,
                              created_at=march, answered_after_hours=3) for _ in range(6)])
    session.add_all(people(4, when=march, alliance="leverkusen", to_org="org-y"))
    # an alliance of one person with twelve referrals
    session.add_all([referral(status="requested", alliance="alone", participant_id=one,
                              created_at=march, overdue=True) for _ in range(12)])
    session.commit()
    rows = {row["to_org"]: row for row in service.referrals_report(
        session=session, alliance="leverkusen", group_by=["to_org"]).rows}
    assert rows["org-x"]["count"] is None
    assert rows["org-x"]["suppressed"] == list(service.REFERRAL_MEASURES)
    y = rows["org-y"]
    assert y["count"] is not None and abs(y["count"] - 10) <= D  # five people
    assert y["median_hours_to_first_answer"] is None
    assert y["acceptance_rate"] is None and y["completion_rate"] is None
    assert y["overdue_open"] == 0
    (whole,) = service.referrals_report(session=session, alliance="leverkusen").rows
    assert whole["overdue_open"] is None  # six overdue referrals, one person
    (alone,) = service.referrals_report(session=session, alliance="alone").rows
    assert alone["count"] is None
    gaps = {row["need_category"]: row for row in service.gaps_report(
        session=session, alliance="alone").rows}
    assert gaps["language_course"]["open_referrals"] is None


def test_the_same_request_gives_the_same_figures(months):
    session = months[0]
    ask = {"session": session, "alliance": "testland", "start": date(2025, 12, 1),
           "end": date(2026, 3, 31), "group_by": ["to_org", "month"]}
    first = service.referrals_report(**ask).rows
    session.expire_all()
    assert service.referrals_report(**ask).rows == first
    # a person's key is drawn once: another referral of a known person leaves it alone
    known = session.scalars(service.select(service.Referral.participant_id)).first()
    before = session.get(report_models.PersonKey, known).record_key
    session.add(referral(status="requested", alliance="elsewhere", participant_id=known))
    session.commit()
    session.expire_all()
    assert session.get(report_models.PersonKey, known).record_key == before
    assert service.referrals_report(**ask).rows == first


def test_every_person_referred_has_a_key(months):
    session = months[0]
    people_referred = set(session.scalars(service.select(service.Referral.participant_id)))
    keys = dict(session.execute(service.select(report_models.PersonKey.participant_id,
                                                report_models.PersonKey.record_key)).all())
    assert people_referred == set(keys)
    # each referral carries its person's key, for the report's covering index
    for made in session.scalars(service.select(service.Referral)):
        assert made.person_key == keys[made.participant_id]


def test_totals_stay_close(months):
    """Every count shown is within D of the truth and not below the threshold; the alliance's
    total and the sum of its receivers' cells stay plausibly close."""
    session, december, march = months
    whole = {"start": date(2025, 12, 1), "end": date(2026, 3, 31)}
    rows = by_org(session, **whole)
    for org in ORGS:
        true = december[org] + 12 + march[org]
        assert abs(rows[org] - true) <= D and rows[org] >= MIN_CELL
    (total,) = service.referrals_report(session=session, alliance="testland", **whole).rows
    true_total = sum(december.values()) + 12 * len(ORGS) + sum(march.values())
    assert abs(total["count"] - true_total) <= D
    # forty independent noises of mean 0 and variance V: their sum is within a few deviations
    assert abs(sum(rows.values()) - true_total) <= 4 * (len(ORGS) * 2.0) ** 0.5


@pytest.mark.parametrize(("deviation", "variance", "floor"),
                         [(3, 2.0, 5), (3, 2.0, 0), (2, 1.0, 5), (5, 4.0, 10)])
def test_perturbation_table(deviation, variance, floor):
    """The table's promises: at most D either way, never negative, zero stays zero, no
    non-zero figure below the floor, mean 0 and variance V wherever the floor leaves room."""
    table = ckm.PerturbationTable(max_deviation=deviation, variance=variance, floor=floor)
    assert table.distribution(0) == {0: 1.0} and table.noise(0, 0.99) == 0
    for value in range(max(floor, 1), floor + 3 * deviation):
        p = table.distribution(value)
        assert abs(sum(p.values()) - 1) < 1e-9
        for noise, chance in p.items():
            assert abs(noise) <= deviation and value + noise >= 0
            assert chance < 1e-12 or value + noise == 0 or value + noise >= floor
        if value >= floor + deviation:
            mean = sum(d * c for d, c in p.items())
            assert abs(mean) < 1e-6
            assert abs(sum(d * d * c for d, c in p.items()) - variance) < 1e-6
        # the lookup by cell key follows the distribution
        hits = Counter(table.noise(value, (k + 0.5) / 10_000) for k in range(10_000))
        for noise, chance in p.items():
            assert abs(hits[noise] / 10_000 - chance) < 0.001
    assert ckm.table(deviation, variance, floor).noise(40, 0.3) == table.noise(40, 0.3)
    if floor:
        with pytest.raises(ValueError, match="suppress"):
            table.noise(floor - 1, 0.5)


def test_cell_key_depends_on_the_persons_and_the_value():
    assert ckm.cell_key(7, 10) == ckm.cell_key(7, 10)
    assert ckm.cell_key(7, 10) != ckm.cell_key(8, 10)
    assert ckm.cell_key(7, 10) != ckm.cell_key(7, 11)
    assert 0 <= ckm.cell_key(ckm.KEY_RANGE * 5 + 3, 2) < 1
