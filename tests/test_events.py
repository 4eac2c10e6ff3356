"""Events cross services through the outbox, a real Redis and real Celery workers, and take
effect exactly once — also when published twice, and when Redis is down at commit time."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from buendnis_common.events import EventError, envelope_data
from tests.support.platform import wait_for

PERSON = {"given_name": "Samira", "family_name": "Nouri", "birth_date": "2003-04-05",
          "residence_status": "aufenthaltsgestattung"}


def query(platform, service: str, sql: str, **params):
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def execute(platform, service: str, sql: str, **params) -> None:
    engine = create_engine(platform.database_urls[service])
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


def erased_in_referrals(platform, participant_id: str) -> list[tuple]:
    return query(
        platform, "referrals",
        "SELECT participant_id, owner_org FROM participant_erasures",
    ) and [
        row for row in query(platform, "referrals",
                             "SELECT participant_id, owner_org FROM participant_erasures")
        if str(uuid.UUID(str(row[0]))) == participant_id
    ]


def erasure_event_id(platform, participant_id: str) -> str:
    rows = query(platform, "intake", "SELECT event_id, data FROM outbox WHERE type = "
                 "'participant.erased'")
    for event_id, data in rows:
        payload = data if isinstance(data, dict) else __import__("json").loads(data)
        if payload["participant_id"] == participant_id:
            return str(uuid.UUID(str(event_id)))
    raise AssertionError("no participant.erased event in intake's outbox")


def processed_count(platform, event_id: str) -> int:
    return sum(
        1 for (stored,) in query(platform, "referrals", "SELECT event_id FROM processed_events")
        if str(uuid.UUID(str(stored))) == event_id
    )


def register_and_erase(platform) -> str:
    client = platform.as_user("cw.jmd-leverkusen")
    created = client.post("/api/v1/participants", json=PERSON)
    assert created.status_code == 201, created.text
    participant_id = created.json()["id"]
    assert client.delete(f"/api/v1/participants/{participant_id}").status_code == 204
    return participant_id


# -- the catalogue keeps personal data out of events ---------------------------------------------

def test_events_carry_ids_codes_and_times_only():
    data = envelope_data("participant.erased", {
        "participant_id": uuid.UUID(int=1), "owner_org": "jmd-leverkusen",
        "alliance": "leverkusen",
    })
    assert data == {"participant_id": str(uuid.UUID(int=1)), "owner_org": "jmd-leverkusen",
                    "alliance": "leverkusen"}
    with pytest.raises(EventError, match="may not carry"):
        envelope_data("participant.erased", {"given_name": "Samira"})
    with pytest.raises(EventError, match="ids, codes and times"):
        envelope_data("participant.erased", {"owner_org": "Samira Nouri, born 2003"})
    with pytest.raises(EventError, match="unknown event type"):
        envelope_data("participant.renamed", {})
    with pytest.raises(EventError, match="offset"):
        envelope_data("participant.erased", {"alliance": datetime(2026, 1, 1)})
    assert envelope_data("participant.erased", {"alliance": datetime(2026, 1, 1, tzinfo=UTC)})


# -- end to end ------------------------------------------------------------------------------------

@pytest.mark.platform
def test_an_erasure_in_intake_reaches_referrals_exactly_once(platform):
    participant_id = register_and_erase(platform)
    rows = wait_for(lambda: erased_in_referrals(platform, participant_id), timeout=30,
                    what="referrals recording the erasure")
    assert [owner for _, owner in rows] == ["jmd-leverkusen"]
    event_id = erasure_event_id(platform, participant_id)
    assert processed_count(platform, event_id) == 1
    published = query(platform, "intake", "SELECT published_at FROM outbox WHERE "
                      "type = 'participant.erased' AND published_at IS NULL")
    assert published == []


@pytest.mark.platform
def test_an_event_published_twice_takes_effect_once(platform):
    participant_id = register_and_erase(platform)
    wait_for(lambda: erased_in_referrals(platform, participant_id), timeout=30,
             what="referrals recording the erasure")
    event_id = erasure_event_id(platform, participant_id)

    # The relay publishes the same row again, twice, as after a crash between publishing and
    # marking the row published.
    for _ in range(2):
        execute(platform, "intake", "UPDATE outbox SET published_at = NULL WHERE "
                "type = 'participant.erased'")
        wait_for(lambda: not query(platform, "intake", "SELECT seq FROM outbox WHERE "
                                   "published_at IS NULL"),
                 timeout=30, what="the sweep relaying the row again")
    wait_for(lambda: platform.log("referrals-worker").count(f"event {event_id}") >= 2,
             timeout=30, what="the referrals worker seeing the duplicates")
    assert len(erased_in_referrals(platform, participant_id)) == 1
    assert processed_count(platform, event_id) == 1


@pytest.mark.platform
def test_events_committed_while_redis_is_down_arrive_once_it_is_back(platform):
    platform.stop("redis")
    try:
        participant_id = register_and_erase(platform)  # the API keeps working without Redis
        pending = query(platform, "intake", "SELECT type FROM outbox WHERE published_at IS NULL")
        assert ("participant.erased",) in pending
        assert erased_in_referrals(platform, participant_id) == []
    finally:
        platform.start("redis")
        platform.wait_redis()
    rows = wait_for(lambda: erased_in_referrals(platform, participant_id), timeout=90,
                    what="the erasure arriving after Redis came back", interval=0.5)
    assert len(rows) == 1
    assert processed_count(platform, erasure_event_id(platform, participant_id)) == 1
