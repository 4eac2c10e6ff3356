"""The whole story in the browser, every step through the pages as the demo users would take it:
a JMD case worker registers a young woman, records her consent and refers her to Caritas'
evening course; the Caritas case worker sees the referral in the inbox, accepts it and books an
appointment; a Meerbusch case worker cannot reach the person or the referral by URL; the
core-group member reads the alliance report, which carries no personal data."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.web.waiting import reload_until_visible

pytestmark = pytest.mark.platform

BERLIN = ZoneInfo("Europe/Berlin")
COURSE = "Deutschkurs B1 am Abend (Geschichte)"


def _birth_date(age: int) -> str:
    today = date.today()
    return date(today.year - age - 1, 6, 15).isoformat()


def test_register_consent_refer_accept_book_and_report(browse, platform):
    family = "Haddad" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:6])
    # Caritas' course is in the alliance's catalogue (Caritas put it there).
    offer = platform.as_user("cw.caritas-leverkusen").post("/api/v1/offers", json={
        "title": COURSE, "category": "language_course", "languages": ["de", "ar"],
        "municipality": "Leverkusen", "mode": "in_person", "capacity": 12})
    assert offer.status_code == 201, offer.text

    # 1. JMD registers the participant through the form.
    jmd = browse()
    page = jmd.sign_in("cw.jmd-leverkusen")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Teilnehmende").click()
    page.get_by_role("link", name="Neu registrieren").click()
    page.get_by_label("Vorname").fill("Samira")
    page.get_by_label("Nachname").fill(family)
    page.get_by_label("Geburtsdatum").fill(_birth_date(22))
    page.get_by_label("Aufenthaltsstatus").select_option("aufenthaltsgestattung")
    page.get_by_label("Sprachen").select_option(["ar", "de"])
    page.get_by_label("Sprachkurs").check()
    page.get_by_role("button", name="Registrieren").click()
    expect(page).to_have_url(re.compile(r"/teilnehmende/[0-9a-f-]{36}$"))
    participant_url = page.url
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(family)
    pseudonym = re.search(r"TN-[A-Z0-9]+", heading.inner_text()).group(0)
    jmd.check_accessibility("story-1-participant-registered")

    # 2. She consents to Caritas seeing her languages and needs (not her name).
    page.get_by_label("Empfangende Organisation").select_option("caritas-leverkusen")
    page.get_by_role("checkbox", name="Sprachen", exact=True).check()
    page.get_by_role("checkbox", name="Bedarfe", exact=True).check()
    page.get_by_label("Gültig bis").fill((date.today() + timedelta(days=180)).isoformat())
    page.get_by_role("button", name="Einwilligung erfassen").click()
    expect(page.locator("#consents tbody tr").filter(has_text="Caritas")).to_contain_text("gültig")
    jmd.check_accessibility("story-2-consent-recorded")

    # 3. JMD refers her to Caritas' course: the consent check says the consent is there.
    page.get_by_role("link", name=re.compile("Vermitteln")).first.click()
    course = page.get_by_role("radio", name=COURSE)
    expect(course).to_be_visible()
    expect(page.locator(".offer-choice").filter(has_text=COURSE)).to_contain_text(
        "Einwilligung für Caritasverband Leverkusen liegt vor")
    course.check()
    jmd.check_accessibility("story-3-choose-offer")
    page.get_by_role("button", name="Vermittlung senden").click()
    expect(page.locator("#referral-status")).to_contain_text("angefragt")
    referral_url = page.url
    jmd.check_accessibility("story-3-referral-sent")

    # 4. Caritas sees it in the inbox, opens it, accepts it and books an appointment.
    caritas = browse()
    cpage = caritas.sign_in("cw.caritas-leverkusen")
    referral_id = referral_url.rstrip("/").rsplit("/", 1)[1]
    entry = cpage.locator("#inbox li").filter(
        has=cpage.locator(f"a[href$='/vermittlungen/{referral_id}']"))
    reload_until_visible(cpage, entry)
    expect(entry.first).to_contain_text("Neue Vermittlung erhalten")
    caritas.check_accessibility("story-4-caritas-inbox")
    entry.first.get_by_role("link", name="Vermittlung öffnen").click()
    main = cpage.locator("main")
    expect(main).to_contain_text(pseudonym)
    expect(main).not_to_contain_text(family)
    cpage.get_by_role("button", name="Annehmen", exact=True).click()
    expect(cpage.locator("#referral-status")).to_contain_text("angenommen")
    tomorrow = datetime.now(BERLIN).date() + timedelta(days=1)
    cpage.get_by_label(re.compile(r"^Beginn")).fill(f"{tomorrow.isoformat()}T10:00")
    cpage.get_by_label(re.compile(r"^Ende")).fill(f"{tomorrow.isoformat()}T11:00")
    cpage.get_by_label(re.compile(r"^Art")).select_option("in_person")
    cpage.get_by_role("button", name="Termin buchen").click()
    expect(cpage.locator("#appointments")).to_contain_text("gebucht")
    caritas.check_accessibility("story-4-caritas-accepted-and-booked")

    # JMD's start page lists the appointment among the next ones.
    page.goto(jmd.url("/"))
    reload_until_visible(page, page.locator("#appointments-heading"))
    expect(page.locator("table").filter(has_text="vor Ort")).to_be_visible()

    # 5. Meerbusch (another alliance) cannot reach the person or the referral by URL.
    meerbusch = browse()
    mpage = meerbusch.sign_in("cw.stadt-meerbusch")
    for url in (participant_url, referral_url):
        response = mpage.goto(url)
        assert response.status == 404
        expect(mpage.get_by_role("heading", level=1)).to_have_text("Nicht gefunden")
        content = mpage.content()
        assert family not in content and pseudonym not in content
    meerbusch.check_accessibility("story-5-meerbusch-not-found")

    # 6. The core group reads the alliance report: figures, no personal data.
    core = browse()
    rpage = core.sign_in("core.caritas-leverkusen")
    rpage.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Berichte").click()
    expect(rpage.get_by_role("heading", level=1)).to_have_text("Berichte")
    reload_until_visible(rpage, rpage.locator("table").filter(has_text="angenommen"))
    content = rpage.content()
    for personal in (family, "Samira", pseudonym, referral_id, participant_url.rsplit("/", 1)[1]):
        assert personal not in content
    assert not re.search(r"TN-[A-Z0-9]{4,}", content)
    core.check_accessibility("story-6-core-group-report")
