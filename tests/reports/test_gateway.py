"""The reports through the gateway, as the demo users: who may read which alliance, the figures
of a known data set, the exports matching the JSON, and intake's needs reaching the gaps."""
from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from buendnis_common.db import make_engine
from referrals.report.models import NeedCount
from tests.reports.conftest import referral
from tests.support.platform import ApiClient

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORTS = ("referrals", "gaps", "stuck")


@pytest.fixture(scope="module")
def testland(platform):
    """An alliance of its own, with a known data set put straight into the referrals database:
    to caritas 12 (8 completed after 5 h, 4 rejected after 1 h), to awo 6 unanswered,
    to jobservice 2 unanswered; two participants each with a rejection and a failure; open
    needs: housing 3, employment 9."""
    alliance = f"testland-{uuid.uuid4().hex[:8]}"
    rows = [referral(status="completed", alliance=alliance, answered_after_hours=5)
            for _ in range(8)]
    rows += [referral(status="rejected", alliance=alliance, answered_after_hours=1,
                      closed_on_answer=True) for _ in range(4)]
    rows += [referral(status="requested", alliance=alliance, to_org="awo-leverkusen")
             for _ in range(6)]
    rows += [referral(status="requested", alliance=alliance, to_org="jobservice-leverkusen")
             for _ in range(2)]
    for _ in range(2):
        pid = uuid.uuid4()
        rows += [referral(status="rejected", alliance=alliance, participant_id=pid,
                          answered_after_hours=1, closed_on_answer=True),
                 referral(status="failed", alliance=alliance, participant_id=pid,
                          answered_after_hours=1, to_org="awo-leverkusen")]
    engine = make_engine(platform.database_urls["referrals"])
    with Session(engine) as session, session.begin():
        session.add_all(rows)
        session.add_all([NeedCount(alliance=alliance, category="housing", open_needs=3),
                         NeedCount(alliance=alliance, category="employment", open_needs=9)])
    engine.dispose()
    return alliance


@pytest.fixture(scope="module")
def ministry(platform) -> ApiClient:
    return platform.as_user("ministry.analyst")


def test_core_group_and_coordinator_read_their_own_alliance(platform):
    for username in ("coord.leverkusen", "core.caritas-leverkusen"):
        client = platform.as_user(username)
        for report in REPORTS:
            response = client.get(f"/api/v1/reports/{report}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["alliance"] == "leverkusen"
            assert {row["alliance"] for row in body["rows"]} <= {"leverkusen"}
            same = client.get(f"/api/v1/reports/{report}?alliance=leverkusen")
            assert same.status_code == 200


def test_another_alliance_is_refused(platform):
    for username, other in (("coord.leverkusen", "rhein-kreis-neuss"),
                            ("core.caritas-leverkusen", "rhein-kreis-neuss"),
                            ("coord.rhein-kreis-neuss", "leverkusen")):
        client = platform.as_user(username)
        for report in REPORTS:
            response = client.get(f"/api/v1/reports/{report}?alliance={other}")
            assert response.status_code == 403, response.text
            assert "own alliance" in response.json()["message"]


def test_case_workers_are_refused_by_the_gateway_and_the_service(platform):
    client = platform.as_user("cw.jmd-leverkusen")
    direct = ApiClient(platform.service_urls["referrals"], "")
    direct.session.headers = client.session.headers
    for report in REPORTS:
        assert client.get(f"/api/v1/reports/{report}").status_code == 403
        # defence in depth: the service itself refuses, too
        response = direct.get(f"/api/v1/reports/{report}")
        assert response.status_code == 403, response.text
        assert response.json()["message"] == (
            "This needs the role coordinator or core_group or ministry; your roles: case_worker."
        )


def test_ministry_reads_all_alliances_one_row_each(ministry, testland):
    body = ministry.get("/api/v1/reports/referrals").json()
    assert body["alliance"] is None
    alliances = [row["alliance"] for row in body["rows"]]
    assert testland in alliances and len(alliances) == len(set(alliances))


def test_alliance_figures_by_receiver(ministry, testland):
    response = ministry.get(f"/api/v1/reports/referrals?alliance={testland}&group_by=to_org")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["perturbation"] == {"method": "cell key", "max_deviation": 3, "variance": 2.0}
    rows = {row["to_org"]: row for row in body["rows"]}
    caritas = rows["caritas-leverkusen"]
    # 14 referrals of 14 people, within the noise's maximum deviation of 3
    assert abs(caritas["count"] - 14) <= 3 and caritas["suppressed"] == []
    # 8 after 5 h, 6 after 1 h: the median of 14 is between the 7th and 8th (5 h and 5 h)
    assert caritas["median_hours_to_first_answer"] == 5.0
    assert (8 - 3) / (14 + 3) <= caritas["acceptance_rate"] <= (8 + 3) / (14 - 3)
    assert caritas["overdue_open"] == 0
    # jobservice's 2 people hidden; awo's 8 referrals of 8 people shown, perturbed
    assert rows["jobservice-leverkusen"]["count"] is None
    assert abs(rows["awo-leverkusen"]["count"] - 8) <= 3
    total = ministry.get(f"/api/v1/reports/referrals?alliance={testland}").json()
    assert abs(total["rows"][0]["count"] - 24) <= 3


def test_the_same_figures_every_time_and_in_every_format(ministry, testland):
    """Asking again, or for CSV instead of JSON, averages no noise away and shows no hidden
    cell: the attacker subtracting one answer from another gets nothing."""
    path = f"/api/v1/reports/referrals?alliance={testland}&group_by=to_org,status"
    first = ministry.get(path).json()
    hidden = [(row["to_org"], row["status"]) for row in first["rows"] if row["count"] is None]
    assert hidden, "the data set has small cells"
    for _ in range(3):
        assert ministry.get(path).json()["rows"] == first["rows"]
    exported = list(csv.DictReader(io.StringIO(ministry.get(path + "&format=csv").text)))
    assert len(exported) == len(first["rows"])
    for row, line in zip(first["rows"], exported, strict=True):
        if row["count"] is None:
            assert line["count"] == "suppressed"
        else:
            # JSON minus CSV: zero, in every visible cell
            assert int(line["count"]) - row["count"] == 0


def test_gaps_hide_small_needs_and_their_complement(ministry, testland):
    rows = {row["need_category"]: row for row in
            ministry.get(f"/api/v1/reports/gaps?alliance={testland}").json()["rows"]}
    assert rows["housing"]["open_needs"] is None
    assert abs(rows["employment"]["open_needs"] - 9) <= 3  # no complement hidden any more
    assert abs(rows["language_course"]["open_referrals"] - 8) <= 3
    assert rows["health"]["open_needs"] == 0


def test_stuck_is_a_suppressed_count(ministry, testland):
    body = ministry.get(f"/api/v1/reports/stuck?alliance={testland}").json()
    assert body["rows"] == [{"alliance": testland, "stuck_participants": None,
                             "suppressed": ["stuck_participants"]}]


@pytest.mark.parametrize("report", ["referrals?group_by=to_org,status", "gaps", "stuck"])
def test_exports_match_the_json(ministry, testland, report):
    path = f"/api/v1/reports/{report}{'&' if '?' in report else '?'}alliance={testland}"
    body = ministry.get(path).json()
    expected = [body["columns"]] + [
        ["suppressed" if name in row["suppressed"] else row[name] for name in body["columns"]]
        for row in body["rows"]
    ]
    as_text = [[str(value) if value is not None else "" for value in line] for line in expected]
    for response in (ministry.get(path, headers={"Accept": "text/csv"}),
                     ministry.get(path + "&format=csv")):
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        assert list(csv.reader(io.StringIO(response.text))) == as_text
    for response in (ministry.get(path, headers={"Accept": XLSX}),
                     ministry.get(path + "&format=xlsx")):
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == XLSX
        assert ".xlsx" in response.headers["Content-Disposition"]
        sheet = load_workbook(io.BytesIO(response.content)).active
        assert [list(line) for line in sheet.iter_rows(values_only=True)] == expected
    assert "suppressed" in str(expected[1:])


def test_bad_query_is_refused(ministry):
    assert ministry.get("/api/v1/reports/referrals?group_by=participant_id").status_code == 422
    assert ministry.get("/api/v1/reports/referrals?from=2026-05-01&to=2026-04-01")\
        .status_code == 422
    assert ministry.get("/api/v1/reports/gaps?format=pdf").status_code == 422


def test_intake_needs_reach_the_gaps(platform):
    engine = make_engine(platform.database_urls["referrals"])

    def open_needs() -> int:
        with Session(engine) as session:
            found = session.scalar(select(NeedCount.open_needs).where(
                NeedCount.alliance == "leverkusen", NeedCount.category == "health"))
        return found or 0

    before = open_needs()
    client = platform.as_user("cw.jmd-leverkusen")
    response = client.post("/api/v1/participants", json={
        "given_name": "Amina", "family_name": "Test", "birth_date": "2004-02-03",
        "residence_status": "duldung",
        "residence_valid_until": (date.today() + timedelta(days=90)).isoformat(),
        "needs": [{"category": "health"}, {"category": "health"}],
    })
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + 30
    while open_needs() != before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    engine.dispose()
    assert open_needs() == before + 2
