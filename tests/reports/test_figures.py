"""Each report's figures on a known data set, worked out by hand (counts within the noise's
maximum deviation), and who may read them."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from buendnis_common.auth import Principal
from buendnis_common.errors import Forbidden
from referrals.report import service
from tests.reports.conftest import offer, referral


def leverkusen_in_march() -> list:
    """19 referrals of Leverkusen made in March 2026, plus some that no March report counts.

    caritas (10): completed answered after 2, 4, 6, 8 h; failed after 10, 12 h; rejected after
    1 h; cancelled by the receiver after 3 h (before accepting); two unanswered and overdue.
    awo (6): five in progress answered after 24 h; one unanswered, not overdue.
    jobservice (3): unanswered."""
    rows = [referral(status="completed", answered_after_hours=h) for h in (2, 4, 6, 8)]
    rows += [referral(status="failed", answered_after_hours=h) for h in (10, 12)]
    rows.append(referral(status="rejected", answered_after_hours=1, closed_on_answer=True))
    rows.append(referral(status="cancelled", answered_after_hours=3, closed_on_answer=True))
    rows += [referral(status="requested", overdue=True) for _ in range(2)]
    rows += [referral(status="in-progress", to_org="awo-leverkusen", answered_after_hours=24)
             for _ in range(5)]
    rows.append(referral(status="requested", to_org="awo-leverkusen"))
    rows += [referral(status="requested", to_org="jobservice-leverkusen") for _ in range(3)]
    # Outside March, or of another alliance: never in a March report of Leverkusen.
    rows.append(referral(status="requested", created_at=datetime(2026, 2, 28, 23, tzinfo=UTC)))
    rows.append(referral(status="requested", created_at=datetime(2026, 4, 1, tzinfo=UTC)))
    rows += [referral(status="requested", alliance="rhein-kreis-neuss",
                      to_org="jmd-neuss", from_org="stadt-meerbusch") for _ in range(7)]
    return rows


@pytest.fixture
def march(session):
    session.add_all(leverkusen_in_march())
    session.commit()
    return session


def march_report(session, **kwargs):
    return service.referrals_report(session=session, alliance="leverkusen",
                                    start=date(2026, 3, 15), end=date(2026, 3, 20), **kwargs)


D = service.Disclosure().max_deviation


def near(shown, true: int) -> bool:
    """A count as the Cell Key Method shows it: within D of the truth, never below 5."""
    return shown is not None and abs(shown - true) <= D and shown >= 5


def rate_near(shown, part: int, whole: int) -> bool:
    """A rate of perturbed counts: between the worst cases of both noises."""
    low = max(part - D, 0) / (whole + D)
    high = min((part + D) / (whole - D), 1.0)
    return shown is not None and low - 0.001 <= shown <= high + 0.001


def test_alliance_totals_for_a_month(march):
    report = march_report(march)
    assert report.period == {"from": "2026-03-01", "to": "2026-03-31"}
    assert report.perturbation == {"method": "cell key", "max_deviation": 3, "variance": 2.0}
    (row,) = report.rows
    assert row["alliance"] == "leverkusen"
    assert near(row["count"], 19)
    # 13 answered: 1 2 3 4 6 8 10 12 24 24 24 24 24 → the 7th (medians are not perturbed)
    assert row["median_hours_to_first_answer"] == 10.0
    # accepted: 4 completed, 2 failed, 5 in progress, of 13 answered
    assert rate_near(row["acceptance_rate"], 11, 13)
    # completed of the 6 accepted that ended (6 people)
    assert rate_near(row["completion_rate"], 4, 6)
    # 2 overdue referrals of 2 people: fewer than 5, hidden
    assert row["overdue_open"] is None and row["suppressed"] == ["overdue_open"]


def test_grouped_by_receiver(march):
    report = march_report(march, group_by=["to_org"])
    rows = {row["to_org"]: row for row in report.rows}
    caritas = rows["caritas-leverkusen"]
    assert near(caritas["count"], 10)
    assert caritas["median_hours_to_first_answer"] == 5.0  # 1 2 3 4 | 6 8 10 12
    assert rate_near(caritas["acceptance_rate"], 6, 8)
    assert rate_near(caritas["completion_rate"], 4, 6)
    assert caritas["suppressed"] == ["overdue_open"]
    # jobservice's 3 people are hidden, with all its figures; awo's 6 stay visible: the
    # alliance's total is perturbed on its own key, so 19 − 10 − 6 does not give the 3 back
    hidden = {name: None for name in service.REFERRAL_MEASURES}
    assert rows["jobservice-leverkusen"] == {
        "alliance": "leverkusen", "to_org": "jobservice-leverkusen", **hidden,
        "suppressed": list(service.REFERRAL_MEASURES)}
    assert near(rows["awo-leverkusen"]["count"], 6)
    # five in progress after 24 h, one unanswered: the median of 5 people's answers
    assert rows["awo-leverkusen"]["median_hours_to_first_answer"] == 24.0


def test_grouped_by_status_and_month(march):
    report = march_report(march, group_by=["status", "month"])
    counts = {row["status"]: row["count"] for row in report.rows}
    assert {row["month"] for row in report.rows} == {"2026-03"}
    # requested 6, in-progress 5, the rest below 5
    assert near(counts.pop("requested"), 6) and near(counts.pop("in-progress"), 5)
    assert counts == {"completed": None, "failed": None, "rejected": None, "cancelled": None}


def test_state_wide_has_one_row_per_alliance(march):
    report = service.referrals_report(session=march, alliance=None)
    assert [row["alliance"] for row in report.rows] == ["leverkusen", "rhein-kreis-neuss"]
    assert near(report.rows[0]["count"], 21) and near(report.rows[1]["count"], 7)
    neuss = report.rows[1]
    assert neuss["acceptance_rate"] is None and "acceptance_rate" in neuss["suppressed"]


def test_a_higher_threshold_hides_more(march):
    report = march_report(march, group_by=["to_org"], min_cell=11)
    assert all(row["count"] is None for row in report.rows)


def test_no_person_appears_in_any_report(march):
    march.add(offer(category="language_course", capacity=10))
    march.commit()
    reports = [march_report(march, group_by=list(service.DIMENSIONS)),
               service.gaps_report(session=march, alliance=None),
               service.stuck_report(session=march, alliance=None)]
    text = repr([report.rows for report in reports])
    for person in march.query(service.Referral):
        assert str(person.participant_id) not in text
        assert person.pseudonym not in text


def test_gaps(session):
    for _ in range(7):
        service.count_need_change(session=session, alliance="leverkusen",
                                  category="language_course", status="open",
                                  previous_status=None)
    # open → in progress is still open; in progress → met is one fewer; 6 remain open.
    service.count_need_change(session=session, alliance="leverkusen", category="language_course",
                              status="in_progress", previous_status="open")
    service.count_need_change(session=session, alliance="leverkusen", category="language_course",
                              status="met", previous_status="in_progress")
    for _ in range(3):
        service.count_need_change(session=session, alliance="leverkusen", category="housing",
                                  status="open", previous_status=None)
    for _ in range(12):
        service.count_need_change(session=session, alliance="leverkusen", category="employment",
                                  status="open", previous_status=None)
    session.add_all([offer(category="language_course", capacity=10),
                     offer(category="language_course", capacity=12),
                     offer(category="language_course", capacity=50, active=False),
                     offer(category="housing", capacity=None),
                     offer(category="housing", capacity=3, alliance="rhein-kreis-neuss")])
    session.add_all([referral(status="requested") for _ in range(8)]
                    + [referral(status="completed", answered_after_hours=1)])
    session.commit()
    rows = {row["need_category"]: row
            for row in service.gaps_report(session=session, alliance="leverkusen").rows}
    assert len(rows) == 12  # every category, zeros too
    # housing's 3 open needs are hidden; offers are organisations' figures, never hidden
    assert rows["housing"] == {"alliance": "leverkusen", "need_category": "housing",
                               "open_needs": None, "active_offers": 1, "capacity": 0,
                               "open_referrals": 0, "suppressed": ["open_needs"]}
    language = rows["language_course"]
    assert near(language["open_needs"], 6) and near(language["open_referrals"], 8)
    assert (language["active_offers"], language["capacity"]) == (2, 22)
    assert near(rows["employment"]["open_needs"], 12)
    # zero stays zero
    assert rows["health"] == {"alliance": "leverkusen", "need_category": "health",
                              "open_needs": 0, "active_offers": 0, "capacity": 0,
                              "open_referrals": 0, "suppressed": []}


def test_stuck(session):
    def person(alliance, statuses):
        pid = uuid.uuid4()
        for status in statuses:
            answered = None if status == "cancelled" else 2
            session.add(referral(status=status, alliance=alliance, participant_id=pid,
                                 answered_after_hours=answered))

    for _ in range(5):
        person("leverkusen", ["rejected", "cancelled"])  # stuck
    person("leverkusen", ["failed", "failed", "rejected", "requested"])  # stuck
    person("leverkusen", ["failed", "failed", "completed"])  # one completed
    person("leverkusen", ["failed", "in-progress"])  # only one closed
    for _ in range(2):
        person("rhein-kreis-neuss", ["failed", "failed"])  # stuck, but only two
    session.commit()
    report = service.stuck_report(session=session, alliance=None)
    leverkusen, neuss = report.rows
    assert leverkusen["alliance"] == "leverkusen" and leverkusen["suppressed"] == []
    assert near(leverkusen["stuck_participants"], 6)
    assert neuss == {"alliance": "rhein-kreis-neuss", "stuck_participants": None,
                     "suppressed": ["stuck_participants"]}
    only = service.stuck_report(session=session, alliance="rhein-kreis-neuss")
    assert [row["alliance"] for row in only.rows] == ["rhein-kreis-neuss"]


def principal(*roles, alliance="leverkusen"):
    return Principal(subject="s", username="u", client_id="c", roles=frozenset(roles),
                     org_alias="org", alliance=alliance)


def test_who_reads_which_alliance():
    assert service.alliance_in_scope(principal=principal("core_group"), requested=None) \
        == "leverkusen"
    assert service.alliance_in_scope(principal=principal("coordinator"),
                                     requested="leverkusen") == "leverkusen"
    assert service.alliance_in_scope(principal=principal("ministry", alliance=None),
                                     requested=None) is None
    assert service.alliance_in_scope(principal=principal("ministry", alliance=None),
                                     requested="rhein-kreis-neuss") == "rhein-kreis-neuss"
    with pytest.raises(Forbidden, match="own alliance"):
        service.alliance_in_scope(principal=principal("core_group"),
                                  requested="rhein-kreis-neuss")
    for roles in (("case_worker",), ("auditor",), ()):
        with pytest.raises(Forbidden, match="core group, coordinators and the ministry"):
            service.alliance_in_scope(principal=principal(*roles), requested=None)


def test_threshold_comes_from_the_environment(monkeypatch):
    from buendnis_common.settings import SettingsError

    assert service.ReportSettings.from_env().min_cell == 5
    monkeypatch.setenv("REPORT_MIN_CELL", "7")
    assert service.ReportSettings.from_env().min_cell == 7
    monkeypatch.setenv("REPORT_MIN_CELL", "1")
    with pytest.raises(SettingsError):
        service.ReportSettings.from_env()
    monkeypatch.setenv("REPORT_MIN_CELL", "5")
    settings = service.ReportSettings.from_env()
    assert (settings.max_deviation, settings.variance) == (3, 2.0)
    monkeypatch.setenv("REPORT_NOISE_MAX_DEVIATION", "4")
    monkeypatch.setenv("REPORT_NOISE_VARIANCE", "3")
    assert service.ReportSettings.from_env().disclosure == service.Disclosure(
        min_cell=5, max_deviation=4, variance=3.0)
    monkeypatch.setenv("REPORT_NOISE_VARIANCE", "16")  # not below D²
    with pytest.raises(SettingsError):
        service.ReportSettings.from_env()
    monkeypatch.setenv("REPORT_NOISE_VARIANCE", "2")
    assert service.ReportSettings.from_env().disclosure.period_months == 1
    monkeypatch.setenv("REPORT_PERIOD_MONTHS", "3")
    assert service.ReportSettings.from_env().disclosure.period_months == 3
    monkeypatch.setenv("REPORT_PERIOD_MONTHS", "5")
    with pytest.raises(SettingsError, match="divide a year"):
        service.ReportSettings.from_env()


def test_periods_are_widened_to_whole_blocks():
    assert service.whole_months(date(2026, 3, 15), date(2026, 3, 20)) == (
        date(2026, 3, 1), date(2026, 4, 1))
    assert service.whole_months(date(2026, 2, 15), date(2026, 12, 2)) == (
        date(2026, 2, 1), date(2027, 1, 1))
    assert service.whole_months(date(2026, 2, 15), date(2026, 5, 2), 3) == (
        date(2026, 1, 1), date(2026, 7, 1))
    assert service.whole_months(date(2026, 11, 15), date(2026, 12, 2), 3) == (
        date(2026, 10, 1), date(2027, 1, 1))
    assert service.whole_months(date(2026, 3, 15), None, 12) == (date(2026, 1, 1), None)
    assert service.whole_months(None, date(2026, 2, 28), 12) == (None, date(2027, 1, 1))
