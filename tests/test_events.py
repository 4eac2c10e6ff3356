"""Events cross services through the outbox, a real Redis and real Celery workers, and take
effect exactly once — also when published twice, and when Redis is down at commit time."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis
from celery import Celery
from sqlalchemy import create_engine, text

from buendnis_common.events import EVENT_TASK, EventError, envelope_data
from buendnis_common.signing import EventSigner, Keyring, RefusedEvent
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
    # Delivered means confirmed: both subscribers recorded it and said so, the sweep noted it.
    wait_for(lambda: confirmation(platform, event_id) == ("notifications,referrals", True),
             timeout=30, what="both subscribers' confirmations noted on the outbox row")


def confirmation(platform, event_id: str) -> tuple[str | None, bool]:
    for stored, confirmed_by, confirmed_at in query(
            platform, "intake", "SELECT event_id, confirmed_by, confirmed_at FROM outbox WHERE "
            "type = 'participant.erased'"):
        if str(uuid.UUID(str(stored))) == event_id:
            return confirmed_by, confirmed_at is not None
    raise AssertionError("no participant.erased event in intake's outbox")


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


# -- forged events: whoever can write to Redis cannot speak for a service -----------------------

def push(platform, envelope, queue: str) -> None:
    """A raw Celery message into a service's queue on the real broker, as an attacker with
    access to Redis (and no key) would send it."""
    celery = Celery(broker=platform.redis_url)
    try:
        celery.send_task(EVENT_TASK, args=[envelope], queue=queue)
    finally:
        celery.close()


def erasure(participant_id: str, *, source: str = "intake") -> dict:
    return {"id": str(uuid.uuid4()), "type": "participant.erased", "source": source,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"participant_id": participant_id, "owner_org": "jmd-leverkusen",
                     "alliance": "leverkusen"}}


def refused_counts(platform) -> dict[str, int]:
    client = redis.Redis.from_url(platform.redis_url)
    try:
        return {key.decode(): int(value)
                for key, value in client.hgetall("buendnis:refused_events").items()}
    finally:
        client.close()


def refusal_line(platform, worker: str, event_id: str) -> str:
    return wait_for(
        lambda: next((line for line in platform.log(worker).splitlines()
                      if "event refused" in line and event_id in line), None),
        timeout=30, what=f"{worker} refusing {event_id}",
    )


@pytest.mark.platform
def test_forged_erasures_pushed_into_redis_erase_nothing(platform):
    from tests.referrals.conftest import grant, refer, register

    jmd, caritas = platform.as_user("cw.jmd-leverkusen"), platform.as_user("cw.caritas-leverkusen")
    participant = register(jmd)
    grant(jmd, participant["id"], "caritas-leverkusen", ["identity"])
    referral = refer(jmd, participant["id"]).json()
    view = f"/api/v1/referrals/{referral['id']}"
    assert "identity" in caritas.get(view).json()["participant"]
    before = refused_counts(platform)

    attacker = EventSigner(Keyring("an-attackers-guess-at-the-deployment-key"))
    tampered = platform.sign_event(erasure(str(uuid.uuid4())))  # genuine, about someone else
    tampered["data"]["participant_id"] = participant["id"]      # then changed in Redis
    forged = {
        "unsigned": erasure(participant["id"]),
        "unknown_key": attacker.sign(erasure(participant["id"])),
        "bad_signature": tampered,
        # Signed with the deployment's key, but erasures come from intake only.
        "wrong_source": platform.sign_event(erasure(participant["id"], source="notifications")),
    }
    for envelope in forged.values():
        push(platform, envelope, "referrals")
        push(platform, envelope, "notifications")
    push(platform, ["not", "an", "envelope"], "referrals")

    for reason, envelope in forged.items():
        for worker in ("referrals-worker", "notifications-worker"):
            line = refusal_line(platform, worker, envelope["id"])
            assert f": {reason} (id {envelope['id']}, type participant.erased" in line
            assert participant["id"] not in line  # the log names the event, not the person
    wait_for(lambda: "event refused by referrals: malformed" in platform.log("referrals-worker"),
             timeout=30, what="the malformed message refused")
    after = refused_counts(platform)
    for reason in forged:
        for service in ("referrals", "notifications"):
            key = f"{service}:{reason}"
            assert after.get(key, 0) - before.get(key, 0) >= 1, key

    # Nothing was handled: no erasure recorded, the receiver still sees what was shared.
    assert erased_in_referrals(platform, participant["id"]) == []
    handled = {str(uuid.UUID(str(row[0]))) for row in
               query(platform, "referrals", "SELECT event_id FROM processed_events")}
    assert not handled & {envelope["id"] for envelope in forged.values()}
    seen = caritas.get(view).json()
    assert seen["snapshot_dropped_reason"] is None and "identity" in seen["participant"]

    # The same message signed with the deployment's key is believed: the key, not Redis, is
    # what a consumer trusts (and whoever holds the key can sign — see the README's limits).
    other = register(jmd)
    genuine = platform.sign_event(erasure(other["id"]))
    push(platform, genuine, "referrals")
    wait_for(lambda: erased_in_referrals(platform, other["id"]), timeout=30,
             what="the signed erasure handled")


def test_a_signature_covers_the_whole_envelope_and_old_keys_still_verify():
    old, new = "an-old-deployment-key-0123456789abcdef", "a-new-deployment-key-0123456789abcdef"
    signed = EventSigner(Keyring(old)).sign(erasure(str(uuid.UUID(int=7))))
    rotated = EventSigner(Keyring(new, [old]))
    assert rotated.check(signed)["data"]["participant_id"] == str(uuid.UUID(int=7))
    with pytest.raises(RefusedEvent, match="unknown_key"):
        EventSigner(Keyring(new)).check(signed)
    for field, value in [("type", "participant.updated"), ("occurred_at", "2020-01-01"),
                         ("id", str(uuid.uuid4())), ("source", "referrals")]:
        with pytest.raises(RefusedEvent, match="bad_signature"):
            rotated.check({**signed, field: value})
    with pytest.raises(RefusedEvent, match="unsigned"):
        rotated.check({key: value for key, value in signed.items() if key != "mac"})
