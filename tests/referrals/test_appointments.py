"""Sender and receiver book appointments on a referral, move them with If-Match, cancel them
with a reason and record whether the participant came."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.referrals.conftest import events_of, set_status
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process

SLOT = {"start": "2031-03-03T10:00:00+01:00", "end": "2031-03-03T11:00:00+01:00",
        "mode": "in_person", "location": "Caritas, Raum 2", "note": "Dolmetscherin kommt"}


def book(client, referral_id: str, **changes):
    return client.post(f"/api/v1/referrals/{referral_id}/appointments", json={**SLOT, **changes})


def test_the_receiver_books_and_both_parties_read_it_with_an_etag(consented_referral, caritas,
                                                                 jmd, platform):
    _participant, referral = consented_referral
    response = book(caritas, referral["id"])
    assert response.status_code == 201, response.text
    appointment = response.json()
    assert appointment["status"] == "booked"
    assert appointment["start"] == "2031-03-03T09:00:00+00:00"  # the same instant, in UTC
    assert appointment["booked_by_org"] == "caritas-leverkusen"
    assert response.headers["Location"] == f"/api/v1/appointments/{appointment['id']}"

    for client in (jmd, caritas):
        read = client.get(f"/api/v1/appointments/{appointment['id']}")
        assert read.status_code == 200
        assert read.headers["ETag"]
        assert read.json() == appointment
    listed = jmd.get(f"/api/v1/referrals/{referral['id']}/appointments").json()
    assert [a["id"] for a in listed] == [appointment["id"]]
    (event,) = events_of(platform, "appointment.booked", appointment_id=appointment["id"])
    assert (event["start"], event["end"], event["mode"], event["status"]) == (
        "2031-03-03T09:00:00+00:00", "2031-03-03T10:00:00+00:00", "in_person", "booked")
    assert "Raum" not in str(event)


def test_the_sender_can_book_too(consented_referral, jmd):
    _participant, referral = consented_referral
    response = book(jmd, referral["id"], mode="video", location=None)
    assert response.status_code == 201, response.text
    assert response.json()["booked_by_org"] == "jmd-leverkusen"


@pytest.mark.parametrize(("changes", "field"), [
    ({"end": "2031-03-03T09:59:00+01:00"}, "end"),
    ({"end": "2031-03-03T10:00:00+01:00"}, "end"),
    ({"start": "2031-03-03T10:00:00"}, "start"),  # no offset
    ({"mode": "carrier_pigeon"}, "mode"),
])
def test_an_invalid_appointment_is_refused(consented_referral, caritas, changes, field):
    _participant, referral = consented_referral
    response = book(caritas, referral["id"], **changes)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


@pytest.mark.parametrize("closing", ["rejected", "cancelled"])
def test_no_appointment_on_a_closed_referral(consented_referral, caritas, closing):
    _participant, referral = consented_referral
    assert set_status(caritas, referral["id"], closing, "kein Platz").status_code == 200
    response = book(caritas, referral["id"])
    assert response.status_code == 409, response.text


def test_moving_needs_the_current_etag(consented_referral, caritas, jmd, platform):
    _participant, referral = consented_referral
    appointment = book(caritas, referral["id"]).json()
    path = f"/api/v1/appointments/{appointment['id']}"
    etag = caritas.get(path).headers["ETag"]
    later = {"start": "2031-03-05T14:00:00+01:00", "end": "2031-03-05T15:00:00+01:00"}

    missing = jmd.patch(path, json=later)
    assert missing.status_code == 428
    assert missing.json()["code"] == 428

    moved = jmd.patch(path, json=later, headers={"If-Match": etag})
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == "2031-03-05T13:00:00+00:00"
    assert moved.headers["ETag"] != etag
    assert caritas.get(path).headers["ETag"] == moved.headers["ETag"]

    stale = caritas.patch(path, json={"start": "2031-03-06T14:00:00+01:00",
                                      "end": "2031-03-06T15:00:00+01:00"},
                          headers={"If-Match": etag})
    assert stale.status_code == 412
    assert caritas.get(path).json()["start"] == "2031-03-05T13:00:00+00:00"

    (event,) = events_of(platform, "appointment.rescheduled", appointment_id=appointment["id"])
    assert event["previous_start"] == "2031-03-03T09:00:00+00:00"
    assert event["start"] == "2031-03-05T13:00:00+00:00"


def test_a_move_cannot_end_before_it_starts(consented_referral, caritas):
    _participant, referral = consented_referral
    appointment = book(caritas, referral["id"]).json()
    path = f"/api/v1/appointments/{appointment['id']}"
    etag = caritas.get(path).headers["ETag"]
    response = caritas.patch(path, json={"start": "2031-03-03T12:00:00+01:00"},
                             headers={"If-Match": etag})
    assert response.status_code == 422
    assert "end" in response.json()["errors"]


def test_cancelling_needs_a_reason_and_tells_the_reminders(consented_referral, caritas,
                                                          platform):
    _participant, referral = consented_referral
    appointment = book(caritas, referral["id"]).json()
    path = f"/api/v1/appointments/{appointment['id']}"
    etag = caritas.get(path).headers["ETag"]

    no_reason = caritas.patch(path, json={"status": "cancelled"}, headers={"If-Match": etag})
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["errors"]

    cancelled = caritas.patch(path, json={"status": "cancelled", "reason": "Kursleiterin krank"},
                              headers={"If-Match": etag})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "Kursleiterin krank"
    assert len(events_of(platform, "appointment.cancelled",
                         appointment_id=appointment["id"])) == 1

    again = caritas.patch(path, json={"status": "fulfilled"},
                          headers={"If-Match": cancelled.headers["ETag"]})
    assert again.status_code == 409


@pytest.mark.parametrize("attendance", ["fulfilled", "noshow"])
def test_attendance_is_recorded_once_the_appointment_has_begun(consented_referral, caritas,
                                                              platform, attendance):
    _participant, referral = consented_referral
    future = book(caritas, referral["id"]).json()
    path = f"/api/v1/appointments/{future['id']}"
    early = caritas.patch(path, json={"status": attendance},
                          headers={"If-Match": caritas.get(path).headers["ETag"]})
    assert early.status_code == 409

    begun = datetime.now(UTC) - timedelta(hours=1)
    past = book(caritas, referral["id"], start=begun.isoformat(),
                end=(begun + timedelta(minutes=45)).isoformat()).json()
    path = f"/api/v1/appointments/{past['id']}"
    recorded = caritas.patch(path, json={"status": attendance},
                             headers={"If-Match": caritas.get(path).headers["ETag"]})
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == attendance
    (event,) = events_of(platform, "appointment.attended", appointment_id=past["id"])
    assert event["status"] == attendance


def test_closing_the_referral_cancels_its_upcoming_appointments(consented_referral, caritas,
                                                               jmd, platform):
    _participant, referral = consented_referral
    appointment = book(caritas, referral["id"]).json()
    assert set_status(jmd, referral["id"], "cancelled", "umgezogen").status_code == 200
    read = caritas.get(f"/api/v1/appointments/{appointment['id']}").json()
    assert read["status"] == "cancelled"
    assert len(events_of(platform, "appointment.cancelled",
                         appointment_id=appointment["id"])) == 1
