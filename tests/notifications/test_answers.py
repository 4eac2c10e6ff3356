"""Participants answer their reminders: by SMS reply through the provider's signed webhook, and
by the link of an e-mail reminder. Both loops run on the real platform with the SMS sink and
the SMTP server, from the reminder to the two case workers' inboxes and the appointment — and
forged, replayed and expired answers are refused."""
from __future__ import annotations

import json
import re
import secrets
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from buendnis_common.answers import make_token
from buendnis_dev.sms import send_reply, twilio_signature
from notifications.messages.render import RLM
from notifications.messages.texts import TEXTS
from tests.notifications.conftest import (
    Users,
    book,
    inbox,
    iso,
    now,
    patch_appointment,
    refer,
    sql,
    wait_reminders,
)
from tests.support.platform import BIN, wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def users(reminders):
    return Users(reminders.platform)


def a_number() -> str:
    return "+49176" + "".join(secrets.choice("0123456789") for _ in range(8))


def webhook(reminders) -> str:
    return f"{reminders.platform.gateway_url}/webhooks/sms/inbound"


def reply(reminders, number: str, body: str, **kwargs):
    return send_reply(sender=number, body=body, url=webhook(reminders),
                      secret=reminders.platform.env["SMS_WEBHOOK_SECRET"], **kwargs)


def sms_booking(reminders, users, *, seconds: int = 12):
    number = a_number()
    booking = book(users, start=timedelta(seconds=seconds), phone=number,
                   preferred_channel="sms")
    wait_for(lambda: reminders.sms.to(number), timeout=30, what="the first SMS reminder")
    return booking, number


def appointment(client, appointment_id: str) -> dict:
    response = client.get(f"/api/v1/appointments/{appointment_id}")
    assert response.status_code == 200, response.text
    return response.json()


def answered(users, appointment_id: str, response: str) -> dict:
    return wait_for(
        lambda: (lambda a: a if a["participant_response"] == response else None)(
            appointment(users["cw.caritas-leverkusen"], appointment_id)),
        timeout=30, what=f"the appointment {response}")


def entries(client, kind: str, appointment_id: str) -> list[dict]:
    return [e for e in inbox(client, kind=kind) if e["appointment_id"] == appointment_id]


def both_told(users, kind: str, appointment_id: str, count: int = 1) -> tuple[list, list]:
    jmd, caritas = users["cw.jmd-leverkusen"], users["cw.caritas-leverkusen"]
    wait_for(lambda: len(entries(jmd, kind, appointment_id)) >= count
             and len(entries(caritas, kind, appointment_id)) >= count,
             timeout=30, what=f"{kind} in both inboxes")
    return entries(jmd, kind, appointment_id), entries(caritas, kind, appointment_id)


# -- two-way SMS -------------------------------------------------------------------------------

def test_an_sms_reply_confirms_the_appointment_for_both_case_workers_once(reminders, users):
    booking, number = sms_booking(reminders, users)
    (first,) = reminders.sms.to(number)[:1]
    assert TEXTS["fa"]["sms_reply_hint"] in first["text"]  # how to answer, in Farsi

    sid = "SM" + uuid.uuid4().hex
    status, acknowledgement = reply(reminders, number, "JA", sid=sid)
    assert status == 200
    assert acknowledgement == RLM + TEXTS["fa"]["ack_confirmed"]  # in their language, RTL
    confirmed = answered(users, booking.appointment_id, "confirmed")
    assert confirmed["responded_at"] and confirmed["status"] == "booked"
    # The sender sees it on the appointment too.
    assert appointment(users["cw.jmd-leverkusen"],
                       booking.appointment_id)["participant_response"] == "confirmed"
    sender, receiver = both_told(users, "answer.confirmed", booking.appointment_id)
    assert sender[0]["data"]["channel"] == "sms" and "SMS" in sender[0]["text"]

    # The provider repeats the webhook (same MessageSid): no second effect.
    assert reply(reminders, number, "JA", sid=sid)[0] == 200
    assert reply(reminders, number, "NEIN", sid=sid)[0] == 200
    again = appointment(users["cw.caritas-leverkusen"], booking.appointment_id)
    assert again["participant_response"] == "confirmed"
    assert again["responded_at"] == confirmed["responded_at"]
    assert len(entries(users["cw.jmd-leverkusen"], "answer.confirmed",
                       booking.appointment_id)) == 1
    assert not entries(users["cw.jmd-leverkusen"], "answer.cancel_requested",
                       booking.appointment_id)


def test_a_request_to_cancel_cancels_nothing_until_the_receiver_frees_the_slot(
        reminders, users):
    booking, number = sms_booking(reminders, users)
    status, acknowledgement = reply(reminders, number, "۲")  # a Persian 2
    assert status == 200 and acknowledgement == RLM + TEXTS["fa"]["ack_cancel_requested"]
    asked = answered(users, booking.appointment_id, "cancel_requested")
    assert asked["status"] == "booked"  # the receiving organisation decides
    both_told(users, "answer.cancel_requested", booking.appointment_id)

    caritas = users["cw.caritas-leverkusen"]
    waiting = caritas.get("/api/v1/referrals", params={"box": "received",
                                                       "cancel_requested": "true"})
    assert booking.referral["id"] in [r["id"] for r in waiting.json()]
    calendar = caritas.get("/api/v1/appointments",
                           params={"participant_response": "cancel_requested"}).json()
    assert booking.appointment_id in [a["id"] for a in calendar]

    cancelled = patch_appointment(caritas, booking.appointment_id,
                                  {"status": "cancelled", "reason": "Absage der Person"})
    assert cancelled.status_code == 200, cancelled.text
    # The slot is free: cancelled in the calendar, no longer waiting for a decision.
    calendar = caritas.get("/api/v1/appointments", params={"status": "cancelled"}).json()
    assert booking.appointment_id in [a["id"] for a in calendar]
    waiting = caritas.get("/api/v1/referrals", params={"box": "received",
                                                       "cancel_requested": "true"})
    assert booking.referral["id"] not in [r["id"] for r in waiting.json()]
    # A later answer to the cancelled appointment (once notifications has heard of it) finds
    # no open appointment and changes nothing.
    wait_for(lambda: entries(users["cw.jmd-leverkusen"], "appointment.cancelled",
                             booking.appointment_id), timeout=30, what="the cancellation")
    assert reply(reminders, number, "1")[1] == RLM + TEXTS["fa"]["ack_no_appointment"]
    assert appointment(caritas, booking.appointment_id)["participant_response"] == (
        "cancel_requested")


def test_forged_and_unsigned_replies_are_refused_and_recorded(reminders, users):
    booking, number = sms_booking(reminders, users)
    platform = reminders.platform
    fields = {"From": number, "To": "+4915700000000", "Body": "NEIN",
              "MessageSid": "SM" + uuid.uuid4().hex}
    url = webhook(reminders)
    attempts = [
        {},  # unsigned
        {"X-Twilio-Signature": "not-a-signature"},
        {"X-Twilio-Signature": twilio_signature("a-guessed-secret", url, fields)},
        # Signed for another URL than the public one the provider calls.
        {"X-Twilio-Signature": twilio_signature(platform.env["SMS_WEBHOOK_SECRET"],
                                                "http://elsewhere.example/webhook", fields)},
    ]
    for headers in attempts:
        answer = requests.post(url, data=fields, headers=headers, timeout=10)
        assert answer.status_code == 403, answer.text
    # Straight to the service's port, past the gateway: the service checks it itself.
    direct = f"{platform.service_urls['notifications']}/webhooks/sms/inbound"
    answer = requests.post(direct, data=fields, headers={
        "X-Twilio-Signature": twilio_signature("a-guessed-secret", url, fields)}, timeout=10)
    assert answer.status_code == 403
    # A signed request whose fields were changed on the way.
    signed = twilio_signature(platform.env["SMS_WEBHOOK_SECRET"], url, fields)
    answer = requests.post(url, data={**fields, "Body": "JA"},
                           headers={"X-Twilio-Signature": signed}, timeout=10)
    assert answer.status_code == 403

    assert appointment(users["cw.caritas-leverkusen"],
                       booking.appointment_id)["participant_response"] is None
    refused = sql(platform, "notifications",
                  "SELECT action FROM audit_log WHERE action LIKE 'sms_webhook.refused%'")
    assert len(refused) >= 6
    assert {"sms_webhook.refused.signature_missing",
            "sms_webhook.refused.signature_wrong"} <= {row[0] for row in refused}
    logs = platform.log("notifications") + platform.log("gateway")
    assert "SMS webhook refused: signature_wrong" in logs
    assert number not in logs and number[1:] not in logs


def test_stop_ends_sms_to_the_number_and_the_next_reminder_is_not_sent(reminders, users):
    booking, number = sms_booking(reminders, users, seconds=14)
    status, acknowledgement = reply(reminders, number, "Stop")
    assert status == 200 and acknowledgement == RLM + TEXTS["fa"]["ack_stop"]
    both_told(users, "answer.sms_stopped", booking.appointment_id)
    found = wait_reminders(users["cw.jmd-leverkusen"], booking.appointment_id, count=1,
                           recipient="participant", status="cancelled", timeout=30)
    (stopped,) = [r for r in found if r["recipient"] == "participant"
                  and r["status"] == "cancelled"]
    assert stopped["reason"] == "sms_stopped" and stopped["offset"] == "4s"
    assert len(reminders.sms.to(number)) == 1  # only the reminder before STOP


def test_an_unclear_reply_reaches_both_inboxes_without_its_text(reminders, users):
    booking, number = sms_booking(reminders, users)
    text = f"Komme spaeter wegen Arzttermin {uuid.uuid4().hex[:8]}"
    status, acknowledgement = reply(reminders, number, text)
    assert status == 200 and acknowledgement == RLM + TEXTS["fa"]["ack_unclear"]
    sender, receiver = both_told(users, "answer.unclear", booking.appointment_id)
    assert text not in json.dumps(sender + receiver)
    platform = reminders.platform
    every_log = "".join(path.read_text(errors="replace") for path in platform.logs.glob("*"))
    assert text not in every_log and number not in every_log
    stored = json.dumps([list(map(str, row)) for row in sql(
        platform, "notifications", "SELECT data FROM inbox_entries")])
    assert text not in stored
    assert appointment(users["cw.caritas-leverkusen"],
                       booking.appointment_id)["participant_response"] is None


def test_a_reply_from_a_number_never_written_to_changes_nothing(reminders):
    status, acknowledgement = reply(reminders, a_number(), "JA")
    assert status == 200 and acknowledgement is None


# -- the link of an e-mail reminder ------------------------------------------------------------

LINK = re.compile(r"/termin/([A-Za-z0-9_\-.]+)")


def emailed_link(reminders, booking) -> str:
    wait_for(lambda: reminders.mail.to(booking.email), timeout=30, what="the e-mail reminder")
    mail = reminders.mail.to(booking.email)[0]
    text = mail.text()
    assert TEXTS["fa"]["answer_link"].split("{link}")[0].strip() in text
    (token,) = set(LINK.findall(text))
    assert f'{reminders.platform.web_url}/termin/{token}' in text
    assert f'href="{reminders.platform.web_url}/termin/{token}"' in mail.html()
    return token


def test_the_email_link_answers_each_way_once_and_shows_nothing_else(reminders, users):
    booking = book(users, start=timedelta(seconds=12))
    token = emailed_link(reminders, booking)
    gateway = reminders.platform.gateway_url
    page = requests.get(f"{gateway}/answers/{token}", timeout=10)
    assert page.status_code == 200, page.text
    shown = page.json()
    assert shown["state"] == "open" and shown["language"] == "fa"
    assert shown["appointment"]["location"] == "Caritas, Raum 2"
    assert shown["appointment"]["organization"] == "Caritasverband Leverkusen"
    # Nothing about the person, nothing about other appointments.
    text = page.text
    for secret_value in (booking.participant["given_name"], booking.participant["family_name"],
                         booking.email, booking.participant["id"], booking.referral["id"]):
        assert secret_value not in text

    confirm = requests.post(f"{gateway}/answers/{token}", json={"response": "confirmed"},
                            timeout=10)
    assert confirm.status_code == 200 and confirm.json()["state"] == "answered"
    replay = requests.post(f"{gateway}/answers/{token}", json={"response": "confirmed"},
                           timeout=10)
    assert replay.status_code == 409 and replay.json()["state"] == "already_answered"
    answered(users, booking.appointment_id, "confirmed")
    sender, receiver = both_told(users, "answer.confirmed", booking.appointment_id)
    assert receiver[0]["data"]["channel"] == "link"

    cancel = requests.post(f"{gateway}/answers/{token}", json={"response": "cancel_requested"},
                           timeout=10)
    assert cancel.status_code == 200
    answered(users, booking.appointment_id, "cancel_requested")
    both_told(users, "answer.cancel_requested", booking.appointment_id)
    assert requests.post(f"{gateway}/answers/{token}", json={"response": "cancel_requested"},
                         timeout=10).status_code == 409
    assert len(entries(users["cw.jmd-leverkusen"], "answer.confirmed",
                       booking.appointment_id)) == 1


def test_a_forged_or_altered_link_is_refused(reminders, users):
    booking = book(users, start=timedelta(seconds=12))
    token = emailed_link(reminders, booking)
    gateway = reminders.platform.gateway_url
    payload, _, signature = token.rpartition(".")
    other = book(users, start=now() + timedelta(minutes=30))
    # Signed with a guessed key, for another appointment.
    forged = make_token("a-guessed-key", appointment_id=uuid.UUID(other.appointment_id),
                        language="de", expires_at=now() + timedelta(days=1))
    altered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature
    for bad in (forged, altered, "nonsense"):
        assert requests.get(f"{gateway}/answers/{bad}", timeout=10).status_code == 404
        assert requests.post(f"{gateway}/answers/{bad}", json={"response": "confirmed"},
                             timeout=10).status_code == 404
    assert appointment(users["cw.caritas-leverkusen"],
                       other.appointment_id)["participant_response"] is None


def test_the_link_expires_when_the_appointment_ends(reminders, users):
    participant, referral = refer(users)
    start = now() + timedelta(seconds=10)
    booked = users["cw.caritas-leverkusen"].post(
        f"/api/v1/referrals/{referral['id']}/appointments",
        json={"start": iso(start), "end": iso(start + timedelta(seconds=2)),
              "mode": "video"})
    assert booked.status_code == 201, booked.text

    class Booked:
        email = participant["contact"]["email"]

    token = emailed_link(reminders, Booked)
    gateway = reminders.platform.gateway_url
    wait_for(lambda: now() > start + timedelta(seconds=3), timeout=20, what="the end")
    late = requests.get(f"{gateway}/answers/{token}", timeout=10)
    assert late.status_code == 410 and late.json()["state"] == "expired"
    assert "appointment" not in late.json()
    assert requests.post(f"{gateway}/answers/{token}", json={"response": "confirmed"},
                         timeout=10).status_code == 410
    assert appointment(users["cw.caritas-leverkusen"],
                       booked.json()["id"])["participant_response"] is None


def test_the_sms_sinks_reply_command_answers_as_the_provider_would(reminders, users):
    """``python -m buendnis_dev.sms reply`` (what `make run` shows): signed with the platform's
    secret over its webhook URL; the acknowledgement lands in the sink's messages."""
    booking, number = sms_booking(reminders, users)
    platform = reminders.platform
    done = subprocess.run(
        [str(BIN / "python"), "-m", "buendnis_dev.sms", "reply", "--from", number, "--body",
         "yes"], env=platform.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert TEXTS["fa"]["ack_confirmed"] in done.stdout
    answered(users, booking.appointment_id, "confirmed")
    kept = Path(platform.env["BUENDNIS_VAR"]) / "sms" / "messages.jsonl"
    records = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    assert any(r["to"] == number and TEXTS["fa"]["ack_confirmed"] in r["text"] for r in records)
