"""The participant answers by the link of an e-mail reminder, in a real browser: the page
(no sign-in) in their language, right to left in Farsi, accessible; each answer once, an
expired or altered link refused plainly. Then the case workers see the answer: the inbox entry,
the appointment in the referral's page and the received box's filter "Absage erbeten".

The link is made as the notifications service makes it for the reminder (the platform's
``ANSWER_LINK_KEY``); the whole loop from the e-mail is walked in
``tests/notifications/test_answers.py``."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import expect

from buendnis_common.answers import make_token
from tests.support.platform import wait_for

JMD = "cw.jmd-leverkusen"
CARITAS = "cw.caritas-leverkusen"


def created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def appointment(platform, *, start: datetime, family_name: str) -> tuple[dict, dict, dict]:
    jmd, caritas = platform.as_user(JMD), platform.as_user(CARITAS)
    today = date.today()
    person = created(jmd.post("/api/v1/participants", json={
        "given_name": "Samira", "family_name": family_name,
        "birth_date": today.replace(year=today.year - 22).isoformat(),
        "residence_status": "aufenthaltsgestattung", "languages": ["fa"],
        "municipality": "Leverkusen"}))
    created(jmd.post(f"/api/v1/participants/{person['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["identity"],
        "purpose": "referral", "valid_until": (today + timedelta(days=90)).isoformat()}))
    referral = created(jmd.post("/api/v1/referrals", json={
        "participant_id": person["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course"}))
    booked = created(caritas.post(f"/api/v1/referrals/{referral['id']}/appointments", json={
        "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "mode": "in_person", "location": "Caritas, Raum 2"}))
    return person, referral, booked


def link(platform, appointment_id: str, *, language: str = "fa",
         expires_at: datetime | None = None) -> str:
    return "/termin/" + make_token(
        platform.env["ANSWER_LINK_KEY"], appointment_id=uuid.UUID(appointment_id),
        language=language, expires_at=expires_at or datetime.now(UTC) + timedelta(days=3))


@pytest.mark.platform
def test_a_participant_answers_by_link_and_both_case_workers_see_it(platform, browse):
    person, referral, booked = appointment(
        platform, start=datetime.now(UTC) + timedelta(days=2), family_name="Link-Antwort")
    path = link(platform, booked["id"])

    participant = browse()
    page = participant.page
    response = page.goto(participant.url(path))
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers  # no session for the participant
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "fa")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("وقت ملاقات شما")
    expect(page.locator("dd").filter(has_text="Caritas, Raum 2")).to_be_visible()
    content = page.content()
    for private in ("Samira", "Link-Antwort", person["id"], referral["id"]):
        assert private not in content
    participant.check_accessibility("answer-open-fa")

    # A second tab with the same page, to send the same answer again later.
    again = browse()
    again.page.goto(again.url(path))

    page.get_by_role("button", name="نه، نمی‌توانم بیایم").click()
    expect(page.locator("#answer-result")).to_contain_text("متشکریم")
    expect(page.get_by_role("button", name="نه، نمی‌توانم بیایم")).to_have_count(0)
    participant.check_accessibility("answer-done-fa")

    again.page.get_by_role("button", name="نه، نمی‌توانم بیایم").click()
    expect(again.page.locator("#answer-result")).to_contain_text("قبلاً")  # already answered

    # The receiving organisation: the inbox, the filter "Absage erbeten", the appointment.
    caritas = browse()
    staff = caritas.sign_in(CARITAS)
    wait_for(lambda: any(e["appointment_id"] == booked["id"] for e in platform.as_user(CARITAS)
                         .get("/api/v1/notifications",
                              params={"kind": "answer.cancel_requested"}).json()),
             timeout=30, what="the answer in the inbox")
    staff.goto(caritas.url("/"))
    entry = staff.locator('.inbox-entry[data-kind="answer.cancel_requested"]').first
    expect(entry).to_contain_text("Absage erbeten")
    expect(entry).to_contain_text("über den Link der E-Mail")
    caritas.check_accessibility("answer-inbox")

    staff.goto(caritas.url("/vermittlungen/?box=received"))
    staff.get_by_label("Absage erbeten").check()
    staff.get_by_role("button", name="Filtern").click()
    rows = staff.locator("#referrals tbody tr")
    expect(rows).to_have_count(1)
    caritas.check_accessibility("answer-filter")
    rows.first.get_by_role("link").click()
    expect(staff.locator("#appointments .participant-response")).to_contain_text(
        "Absage erbeten")
    expect(staff.get_by_text("Die teilnehmende Person bittet, diesen Termin abzusagen"))\
        .to_be_visible()
    caritas.check_accessibility("answer-appointment")

    # The sender sees it on the appointment too.
    jmd = browse()
    sender = jmd.sign_in(JMD)
    sender.goto(jmd.url(f"/vermittlungen/{referral['id']}"))
    expect(sender.locator("#appointments .participant-response")).to_contain_text(
        "Absage erbeten")


@pytest.mark.platform
def test_an_expired_or_altered_link_says_so_plainly(platform, browse):
    _person, _referral, booked = appointment(
        platform, start=datetime.now(UTC) + timedelta(days=1), family_name="Link-Abgelaufen")
    participant = browse()
    page = participant.page

    expired = link(platform, booked["id"], language="de",
                   expires_at=datetime.now(UTC) - timedelta(minutes=1))
    response = page.goto(participant.url(expired))
    assert response.status == 410
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.locator("#answer-result")).to_contain_text("Dieser Link gilt nicht mehr")
    expect(page.get_by_role("button")).to_have_count(0)
    assert "Caritas, Raum 2" not in page.content()
    participant.check_accessibility("answer-expired-de")

    good = link(platform, booked["id"], language="en")
    payload, _, signature = good.rpartition(".")
    altered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature
    response = page.goto(participant.url(altered))
    assert response.status == 404
    # Nothing in an altered link is believed, its language neither: the browser's is used.
    expect(page.locator("#answer-result")).to_contain_text("Dieser Link ist nicht gültig")
    participant.check_accessibility("answer-invalid-en")
    assert re.search(r"Caritas|Raum", page.content()) is None
