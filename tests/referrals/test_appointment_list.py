"""A case worker's calendar: the appointments on every referral their organisation sent or
received, earliest first, filtered by period and status, and nobody else's."""
from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.referrals.conftest import grant, query, refer, register, same_id
from tests.referrals.test_appointments import book
from tests.referrals.test_consent_ends import snapshot_dropped
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process
from tests.support.platform import wait_for

BERLIN_SUMMER = timezone(timedelta(hours=2))
# Each story books on days of its own, far ahead, so that other stories' appointments do not
# fall into the period it looks at.
_WEEKS = itertools.count(random.randrange(0, 1_500, 50))


def fresh_day() -> datetime:
    """Midnight (UTC) of a Wednesday whose week no other story of this session uses."""
    return datetime(2040, 1, 4, tzinfo=UTC) + timedelta(weeks=next(_WEEKS))


def slot(day: datetime, hour: int, minutes: int = 60) -> dict:
    start = day + timedelta(hours=hour)
    return {"start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat()}


def calendar(client, **params):
    return client.get("/api/v1/appointments", params={"page_size": 100, **params})


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def test_both_parties_see_the_appointment_and_nobody_else(consented_referral, jmd, caritas,
                                                          awo, meerbusch, users):
    _participant, referral = consented_referral
    day = fresh_day()
    booked = book(jmd, referral["id"], **slot(day, 9))
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    period = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}

    for party in (jmd, caritas):
        listed = calendar(party, **period)
        assert listed.json() == [appointment]  # the appointment, and nothing about the person
        assert '"total": 1' in listed.headers["X-Pagination"]
    for outsider in (awo, meerbusch, users["cw.jmd-neuss"]):
        assert ids(calendar(outsider, **period)) == []


def test_from_defaults_to_now(consented_referral, caritas):
    _participant, referral = consented_referral
    now = datetime.now(UTC)
    begun = book(caritas, referral["id"], start=(now - timedelta(hours=1)).isoformat(),
                 end=(now - timedelta(minutes=15)).isoformat()).json()
    coming = book(caritas, referral["id"], start=(now + timedelta(hours=1)).isoformat(),
                  end=(now + timedelta(hours=2)).isoformat()).json()

    upcoming = ids(calendar(caritas, to=(now + timedelta(hours=3)).isoformat()))
    assert coming["id"] in upcoming
    assert begun["id"] not in upcoming
    earlier = ids(calendar(caritas, **{"from": (now - timedelta(hours=2)).isoformat(),
                                       "to": (now + timedelta(hours=3)).isoformat()}))
    assert earlier.index(begun["id"]) < earlier.index(coming["id"])


def test_the_period_is_from_inclusive_to_exclusive_earliest_first(consented_referral, jmd,
                                                                  caritas):
    _participant, referral = consented_referral
    day = fresh_day()
    late = book(caritas, referral["id"], **slot(day, 15)).json()
    early = book(jmd, referral["id"], **slot(day, 8)).json()
    next_day = book(caritas, referral["id"], **slot(day + timedelta(days=1), 8)).json()
    before = book(caritas, referral["id"], **slot(day - timedelta(days=1), 8)).json()

    # The same instants, written with Berlin's summer offset.
    period = {"from": (day + timedelta(hours=8)).astimezone(BERLIN_SUMMER).isoformat(),
              "to": (day + timedelta(days=1, hours=8)).astimezone(BERLIN_SUMMER).isoformat()}
    assert ids(calendar(jmd, **period)) == [early["id"], late["id"]]
    wider = {"from": (day - timedelta(days=1)).isoformat(),
             "to": (day + timedelta(days=2)).isoformat()}
    assert ids(calendar(jmd, **wider)) == [before["id"], early["id"], late["id"], next_day["id"]]


def test_the_status_filter_picks_one_status_and_none_means_all(consented_referral, caritas,
                                                               jmd):
    _participant, referral = consented_referral
    day = fresh_day()
    kept = book(caritas, referral["id"], **slot(day, 9)).json()
    dropped = book(caritas, referral["id"], **slot(day, 11)).json()
    path = f"/api/v1/appointments/{dropped['id']}"
    cancelled = caritas.patch(path, json={"status": "cancelled", "reason": "Kursleiterin krank"},
                              headers={"If-Match": caritas.get(path).headers["ETag"]})
    assert cancelled.status_code == 200, cancelled.text
    period = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}

    assert ids(calendar(jmd, **period)) == [kept["id"], dropped["id"]]
    assert ids(calendar(jmd, status="booked", **period)) == [kept["id"]]
    assert ids(calendar(jmd, status="cancelled", **period)) == [dropped["id"]]
    assert ids(calendar(jmd, status="fulfilled", **period)) == []


def test_the_calendar_pages_like_every_other_list(consented_referral, caritas):
    _participant, referral = consented_referral
    day = fresh_day()
    booked = [book(caritas, referral["id"], **slot(day, hour)).json()["id"] for hour in (8, 9, 10)]
    period = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}

    first = calendar(caritas, page_size=2, **period)
    assert ids(first) == booked[:2]
    assert '"total": 3' in first.headers["X-Pagination"]
    assert ids(calendar(caritas, page_size=2, page=2, **period)) == booked[2:]


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "nächste Woche"}, "from"),
    ({"from": "2040-01-01T10:00:00"}, "from"),  # no offset
    ({"from": "2040-01-02T00:00:00+00:00", "to": "2040-01-01T00:00:00+00:00"}, "from"),
    ({"to": "gestern"}, "to"),
    ({"status": "postponed"}, "status"),
])
def test_a_bad_query_is_refused_naming_the_field(jmd, params, field):
    response = jmd.get("/api/v1/appointments", params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


@pytest.mark.parametrize("username", ["ministry.analyst", "core.caritas-leverkusen",
                                      "coord.leverkusen", "audit.jmd-leverkusen"])
def test_roles_that_do_not_work_cases_are_refused(users, username):
    response = users[username].get("/api/v1/appointments")
    assert response.status_code == 403, response.text
    assert "case_worker" in response.json()["message"]


def test_an_appointment_stays_listed_after_the_consent_is_withdrawn(jmd, caritas):
    participant = register(jmd)
    consent = grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    referral = refer(jmd, participant["id"]).json()
    day = fresh_day()
    appointment = book(caritas, referral["id"], **slot(day, 10)).json()
    withdrawn = jmd.delete(f"/api/v1/participants/{participant['id']}/consents/{consent['id']}")
    assert withdrawn.status_code == 204, withdrawn.text
    wait_for(lambda: snapshot_dropped(caritas, referral["id"], "consent_withdrawn"),
             timeout=30, what="referrals dropping the snapshot")

    period = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    for party in (caritas, jmd):
        assert ids(calendar(party, **period)) == [appointment["id"]]


def test_listing_is_audited_per_appointment(consented_referral, caritas, platform):
    participant, referral = consented_referral
    day = fresh_day()
    appointment = book(caritas, referral["id"], **slot(day, 10)).json()
    calendar(caritas, **{"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()})
    rows = query(platform, "referrals",
                 "SELECT actor, actor_org, participant_id, record_id FROM audit_log "
                 "WHERE action = 'appointment.list'")
    assert [(actor, org) for actor, org, pid, rid in rows
            if same_id(rid, appointment["id"]) and same_id(pid, participant["id"])] == [
        ("cw.caritas-leverkusen", "caritas-leverkusen")]
