"""The referral's status follows FHIR Task codes: the receiver answers and works the referral,
either party cancels, reasons where a partner needs one, and every change is kept."""
from __future__ import annotations

import pytest

from tests.referrals.conftest import events_of, grant, refer, register, set_status
from tests.support.inprocess import in_process_platform  # noqa: F401 - `platform`, in-process

# How to bring a fresh referral to a status, as the receiver.
PATH_TO = {
    "requested": [],
    "accepted": ["accepted"],
    "in-progress": ["accepted", "in-progress"],
    "on-hold": ["accepted", "on-hold"],
}
REASONS = {"rejected", "cancelled", "on-hold", "failed"}

RECEIVER_MOVES = [
    ("requested", "accepted"), ("requested", "rejected"), ("requested", "cancelled"),
    ("accepted", "in-progress"), ("accepted", "on-hold"), ("accepted", "completed"),
    ("accepted", "failed"), ("accepted", "cancelled"),
    ("in-progress", "on-hold"), ("in-progress", "completed"), ("in-progress", "failed"),
    ("in-progress", "cancelled"),
    ("on-hold", "in-progress"), ("on-hold", "completed"), ("on-hold", "failed"),
    ("on-hold", "cancelled"),
]
SENDER_MOVES = [
    ("requested", "cancelled"), ("accepted", "cancelled"), ("in-progress", "cancelled"),
    ("on-hold", "cancelled"),
]


def reason_for(status: str) -> str | None:
    return f"Grund für {status}" if status in REASONS else None


@pytest.fixture
def new_referral(jmd, caritas):
    """A fresh referral from JMD to Caritas, brought to the given status by Caritas."""
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["languages"])

    def make(status: str = "requested") -> str:
        response = refer(jmd, participant["id"])
        assert response.status_code == 201, response.text
        referral_id = response.json()["id"]
        for step in PATH_TO[status]:
            moved = set_status(caritas, referral_id, step, reason_for(step))
            assert moved.status_code == 200, moved.text
        return referral_id

    return make


@pytest.mark.parametrize(("start", "target"), RECEIVER_MOVES,
                         ids=[f"{a}->{b}" for a, b in RECEIVER_MOVES])
def test_the_receiver_makes_every_move_the_state_machine_allows(
    new_referral, caritas, jmd, start, target
):
    referral_id = new_referral(start)
    response = set_status(caritas, referral_id, target, reason_for(target))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == target
    # The sender sees the new status and the change in the history.
    assert jmd.get(f"/api/v1/referrals/{referral_id}").json()["status"] == target
    last = jmd.get(f"/api/v1/referrals/{referral_id}/history").json()[-1]
    assert (last["status"], last["previous_status"], last["organization"], last["user"],
            last["reason"]) == (target, start, "caritas-leverkusen", "cw.caritas-leverkusen",
                                reason_for(target))


@pytest.mark.parametrize(("start", "target"), SENDER_MOVES,
                         ids=[f"{a}->{b}" for a, b in SENDER_MOVES])
def test_the_sender_can_cancel_at_every_open_status(new_referral, jmd, start, target):
    referral_id = new_referral(start)
    response = set_status(jmd, referral_id, target, "Teilnehmerin ist umgezogen")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["allowed_statuses"] == []


@pytest.mark.parametrize(("start", "target"), [
    ("requested", "accepted"), ("requested", "rejected"), ("accepted", "in-progress"),
    ("accepted", "completed"), ("in-progress", "failed"), ("on-hold", "in-progress"),
])
def test_the_sender_cannot_answer_for_the_receiver(new_referral, jmd, start, target):
    referral_id = new_referral(start)
    response = set_status(jmd, referral_id, target, reason_for(target))
    assert response.status_code == 403, response.text
    assert response.json()["errors"]["allowed"] == ["cancelled"]
    assert jmd.get(f"/api/v1/referrals/{referral_id}").json()["status"] == start


@pytest.mark.parametrize(("start", "target", "allowed"), [
    ("requested", "completed", ["accepted", "rejected", "cancelled"]),
    ("requested", "in-progress", ["accepted", "rejected", "cancelled"]),
    ("requested", "requested", ["accepted", "rejected", "cancelled"]),
    ("accepted", "accepted", ["in-progress", "on-hold", "completed", "failed", "cancelled"]),
    ("accepted", "rejected", ["in-progress", "on-hold", "completed", "failed", "cancelled"]),
    ("on-hold", "accepted", ["in-progress", "completed", "failed", "cancelled"]),
])
def test_a_move_the_state_machine_forbids_is_409_naming_the_allowed_ones(
    new_referral, caritas, start, target, allowed
):
    referral_id = new_referral(start)
    response = set_status(caritas, referral_id, target, reason_for(target))
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["errors"]["allowed"] == allowed
    for status in allowed:
        assert status in body["message"]


@pytest.mark.parametrize("closing", ["completed", "rejected", "cancelled", "failed"])
def test_a_closed_referral_does_not_move_again(new_referral, caritas, jmd, closing):
    referral_id = new_referral("requested" if closing in ("rejected", "cancelled")
                               else "accepted")
    assert set_status(caritas, referral_id, closing, reason_for(closing)).status_code == 200
    for client, target in ((caritas, "in-progress"), (jmd, "cancelled"), (caritas, "accepted")):
        response = set_status(client, referral_id, target, "noch einmal")
        assert response.status_code == 409, response.text
        assert response.json()["errors"]["allowed"] == []


@pytest.mark.parametrize("target", ["rejected", "cancelled"])
def test_rejecting_or_cancelling_needs_a_reason(new_referral, caritas, target):
    referral_id = new_referral("requested")
    for reason in (None, "", "   "):
        response = set_status(caritas, referral_id, target, reason)
        assert response.status_code == 422, response.text
        assert "reason" in response.json()["errors"]
    assert caritas.get(f"/api/v1/referrals/{referral_id}").json()["status"] == "requested"


@pytest.mark.parametrize("target", ["on-hold", "failed"])
def test_holding_or_failing_needs_a_reason(new_referral, caritas, target):
    referral_id = new_referral("accepted")
    response = set_status(caritas, referral_id, target)
    assert response.status_code == 422
    assert "reason" in response.json()["errors"]


def test_an_unknown_status_is_invalid(new_referral, caritas):
    response = set_status(caritas, new_referral(), "approved")
    assert response.status_code == 422
    assert "status" in response.json()["errors"]


def test_the_history_keeps_every_change_with_who_when_and_why(new_referral, caritas, jmd,
                                                              platform):
    referral_id = new_referral()
    set_status(caritas, referral_id, "accepted")
    set_status(caritas, referral_id, "on-hold", "Kurs startet erst im April")
    set_status(caritas, referral_id, "in-progress")
    set_status(jmd, referral_id, "cancelled", "Teilnehmerin hat Arbeit gefunden")

    for client in (jmd, caritas):
        history = client.get(f"/api/v1/referrals/{referral_id}/history").json()
        assert [(h["status"], h["organization"], h["user"], h["reason"]) for h in history] == [
            ("requested", "jmd-leverkusen", "cw.jmd-leverkusen", None),
            ("accepted", "caritas-leverkusen", "cw.caritas-leverkusen", None),
            ("on-hold", "caritas-leverkusen", "cw.caritas-leverkusen",
             "Kurs startet erst im April"),
            ("in-progress", "caritas-leverkusen", "cw.caritas-leverkusen", None),
            ("cancelled", "jmd-leverkusen", "cw.jmd-leverkusen",
             "Teilnehmerin hat Arbeit gefunden"),
        ]
        assert all(h["at"].endswith("+00:00") for h in history)
    changed = events_of(platform, "referral.status_changed", referral_id=referral_id)
    assert [(e["previous_status"], e["status"], e["changed_by_org"]) for e in changed] == [
        ("requested", "accepted", "caritas-leverkusen"),
        ("accepted", "on-hold", "caritas-leverkusen"),
        ("on-hold", "in-progress", "caritas-leverkusen"),
        ("in-progress", "cancelled", "jmd-leverkusen"),
    ]
    assert all("reason" not in event for event in changed)
    referral = jmd.get(f"/api/v1/referrals/{referral_id}").json()
    assert referral["answered_at"] is not None and referral["closed_at"] is not None
