"""Referrals in the browser: a JMD case worker refers a participant to Caritas' evening German
course, Caritas accepts and books an appointment, both work on it; consent, reasons, other
organisations' records and messages in Arabic.

The data the stories start from is prepared through the API as the demo users (the platform
fixture loads no demo data)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.web.waiting import reload_until_visible

JMD = "cw.jmd-leverkusen"
CARITAS = "cw.caritas-leverkusen"
AWO = "cw.awo-leverkusen"
MEERBUSCH = "cw.stadt-meerbusch"
BERLIN = ZoneInfo("Europe/Berlin")
COURSE = "Deutschkurs B1 am Abend"


def created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def register(api, *, family_name: str, needs=("language_course",)) -> dict:
    """A participant of 22 years, registered by ``api``'s organisation."""
    today = date.today()
    return created(api.post("/api/v1/participants", json={
        "given_name": "Samira",
        "family_name": family_name,
        "birth_date": today.replace(year=today.year - 22).isoformat(),
        "residence_status": "aufenthaltsgestattung",
        "languages": ["ar"],
        "municipality": "Leverkusen",
        "needs": [{"category": category} for category in needs],
    }))


def consent(api, participant_id: str, recipient: str, categories: list[str]) -> dict:
    return created(api.post(f"/api/v1/participants/{participant_id}/consents", json={
        "recipient_org": recipient,
        "data_categories": categories,
        "purpose": "referral",
        "valid_until": (date.today() + timedelta(days=365)).isoformat(),
    }))


def refer(api, participant_id: str, offer: dict) -> dict:
    return created(api.post("/api/v1/referrals", json={
        "participant_id": participant_id,
        "to_org": offer["provider_org"],
        "need_category": offer["category"],
        "offer_id": offer["id"],
    }))


@pytest.fixture(scope="module")
def jmd(platform):
    return platform.as_user(JMD)


@pytest.fixture(scope="module")
def evening_course(platform) -> dict:
    """Caritas' evening German course in the catalogue of the Leverkusen alliance."""
    return created(platform.as_user(CARITAS).post("/api/v1/offers", json={
        "title": COURSE,
        "category": "language_course",
        "languages": ["de", "ar"],
        "municipality": "Leverkusen",
        "mode": "in_person",
        "capacity": 12,
    }))


@pytest.fixture(scope="module")
def awo_counselling(platform) -> dict:
    return created(platform.as_user(AWO).post("/api/v1/offers", json={
        "title": "Migrationsberatung am Vormittag",
        "category": "counselling",
        "languages": ["de"],
        "municipality": "Leverkusen",
        "mode": "in_person",
    }))


def flash(page: Page):
    return page.locator(".flash")


def test_jmd_refers_caritas_accepts_and_both_work_on_the_appointment(
        browse, platform, jmd, evening_course):
    participant = register(jmd, family_name="Haddad")
    # Languages and needs only: no identity, so Caritas must not see the name.
    consent(jmd, participant["id"], "caritas-leverkusen", ["languages", "needs"])

    # JMD opens the new referral for the participant and finds Caritas' evening course.
    jmd_person = browse()
    page = jmd_person.sign_in(JMD)
    page.goto(jmd_person.url(f"/vermittlungen/neu?participant_id={participant['id']}"))
    expect(page.get_by_role("heading", level=1, name="Neue Vermittlung")).to_be_visible()
    expect(page.get_by_text(participant["pseudonym"])).to_be_visible()
    course = page.get_by_role("radio", name=COURSE).first
    expect(course).to_be_visible()
    details = page.locator(".offer-choice").filter(has_text=COURSE).first
    expect(details).to_contain_text("Caritasverband Leverkusen")
    expect(details).to_contain_text("Einwilligung für Caritasverband Leverkusen liegt vor")
    expect(details).to_contain_text("Sprachen")
    jmd_person.check_accessibility("referral-new")
    course.check()
    expect(page.get_by_label(re.compile(r"^Bedarf"))).to_have_value("language_course")
    page.get_by_label("Notiz für Ihre Organisation").fill("Abendkurs wegen Minijob")
    page.get_by_role("button", name="Vermittlung senden").click()

    # The referral's page: requested.
    expect(page.get_by_role("heading", level=1, name="Vermittlung: Sprachkurs")).to_be_visible()
    expect(flash(page)).to_contain_text("Die Vermittlung an Caritasverband Leverkusen ist gesendet")
    expect(page.locator("#referral-status")).to_contain_text("angefragt")
    expect(page.get_by_role("link", name=COURSE)).to_be_visible()
    expect(page.get_by_role("link", name="Zur teilnehmenden Person")).to_be_visible()
    referral_id = page.url.rstrip("/").rsplit("/", 1)[1]
    jmd_person.check_accessibility("referral-detail-sender")

    # Caritas finds it in its inbox on the start page.
    caritas_person = browse()
    cpage = caritas_person.sign_in(CARITAS)
    entry = cpage.locator("#inbox li").filter(
        has=cpage.locator(f"a[href$='/vermittlungen/{referral_id}']"),
        has_text="Neue Vermittlung erhalten")
    reload_until_visible(cpage, entry)
    entry.first.get_by_role("link", name="Vermittlung öffnen").click()

    # Only the pseudonym and the consented categories; no name.
    expect(cpage.get_by_role("heading", level=1, name="Vermittlung: Sprachkurs")).to_be_visible()
    expect(cpage.get_by_role("heading", name="Angaben zur Person")).to_be_visible()
    expect(cpage.locator("main")).to_contain_text(participant["pseudonym"])
    expect(cpage.get_by_role("heading", name="Sprachen", level=3)).to_be_visible()
    expect(cpage.get_by_role("heading", name="Bedarfe", level=3)).to_be_visible()
    expect(cpage.locator("main")).not_to_contain_text("Haddad")
    expect(cpage.locator("main")).not_to_contain_text("Samira")
    expect(cpage.locator("main")).not_to_contain_text("Abendkurs wegen Minijob")  # JMD's own note
    caritas_person.check_accessibility("referral-detail-receiver")

    cpage.get_by_role("button", name="Annehmen", exact=True).click()
    expect(flash(cpage)).to_contain_text("Der Status ist jetzt: angenommen.")
    expect(cpage.locator("#referral-status")).to_contain_text("angenommen")

    # Caritas books a phone appointment for tomorrow, 10:00–11:00.
    tomorrow = datetime.now(BERLIN).date() + timedelta(days=1)
    cpage.get_by_label(re.compile(r"^Beginn")).fill(f"{tomorrow.isoformat()}T10:00")
    cpage.get_by_label(re.compile(r"^Ende")).fill(f"{tomorrow.isoformat()}T11:00")
    cpage.get_by_label(re.compile(r"^Art")).select_option("phone")
    cpage.get_by_label("Ort oder Zugang").fill("Rückruf unter der bekannten Nummer")
    cpage.get_by_role("button", name="Termin buchen").click()
    expect(flash(cpage)).to_contain_text("Der Termin ist gebucht.")
    day = tomorrow.strftime("%d.%m.%y")
    appointments = cpage.locator("#appointments")
    expect(appointments).to_contain_text(f"{day}, 10:00")
    expect(appointments).to_contain_text(f"{day}, 11:00")
    expect(appointments).to_contain_text("telefonisch")
    expect(appointments).to_contain_text("gebucht")

    # Caritas' received box lists it, with the pseudonym.
    cpage.goto(caritas_person.url("/vermittlungen/"))
    expect(cpage.get_by_role("link", name="Erhalten")).to_have_attribute("aria-current", "page")
    row = cpage.locator("#referrals tbody tr").filter(has_text=participant["pseudonym"])
    expect(row).to_contain_text("angenommen")
    expect(row).to_contain_text("Jugendmigrationsdienst Leverkusen")
    expect(cpage.locator("#referrals")).not_to_contain_text("Haddad")
    caritas_person.check_accessibility("referrals-received")
    # It is not overdue: it was answered within the response time. (Other referrals to Caritas,
    # from other tests, may be.)
    cpage.get_by_label("nur überfällige").check()
    cpage.get_by_role("button", name="Filtern").click()
    expect(cpage.get_by_label("nur überfällige")).to_be_checked()
    expect(cpage.locator("main")).not_to_contain_text(participant["pseudonym"])

    # JMD sees the answer and the appointment.
    page.reload()
    expect(page.locator("#referral-status")).to_contain_text("angenommen")
    expect(page.locator("#appointments")).to_contain_text(f"{day}, 10:00")
    page.goto(jmd_person.url("/vermittlungen/?box=sent"))
    expect(page.get_by_role("link", name="Gesendet")).to_have_attribute("aria-current", "page")
    expect(page.locator("#referrals tbody tr").filter(has_text=participant["pseudonym"])
           ).to_contain_text("angenommen")
    jmd_person.check_accessibility("referrals-sent")
    page.goto(jmd_person.url(f"/vermittlungen/{referral_id}"))

    # Caritas changes the appointment meanwhile: JMD's move, based on what JMD saw, is refused.
    appointment_id = platform.as_user(CARITAS).get(
        f"/api/v1/referrals/{referral_id}/appointments").json()[0]["id"]
    caritas_api = platform.as_user(CARITAS)
    seen = caritas_api.get(f"/api/v1/appointments/{appointment_id}")
    changed = caritas_api.patch(f"/api/v1/appointments/{appointment_id}",
                                json={"location": "Rückruf, Zimmer 2"},
                                headers={"If-Match": seen.headers["ETag"]})
    assert changed.status_code == 200, changed.text
    page.locator("summary").filter(has_text="Verschieben").first.click()
    page.get_by_label("Neuer Beginn").fill(f"{tomorrow.isoformat()}T11:00")
    page.get_by_label("Neues Ende").fill(f"{tomorrow.isoformat()}T12:00")
    page.get_by_role("button", name="Termin verschieben").click()
    expect(page.get_by_role("alert")).to_contain_text("inzwischen geändert – bitte neu laden")

    # Reloaded, the move goes through.
    page.goto(jmd_person.url(f"/vermittlungen/{referral_id}"))
    expect(page.locator("#appointments")).to_contain_text("Rückruf, Zimmer 2")
    page.locator("summary").filter(has_text="Verschieben").first.click()
    page.get_by_label("Neuer Beginn").fill(f"{tomorrow.isoformat()}T11:00")
    page.get_by_label("Neues Ende").fill(f"{tomorrow.isoformat()}T12:00")
    page.get_by_role("button", name="Termin verschieben").click()
    expect(flash(page)).to_contain_text("Der Termin ist verschoben.")
    expect(page.locator("#appointments")).to_contain_text(f"{day}, 11:00")
    expect(page.locator("#appointments")).to_contain_text(f"{day}, 12:00")

    # JMD cancels it, with a reason.
    page.locator("summary").filter(has_text="Absagen").first.click()
    page.get_by_label("Grund der Absage").fill("Die Teilnehmerin ist erkrankt.")
    page.get_by_role("button", name="Termin absagen").click()
    expect(flash(page)).to_contain_text("Der Termin ist abgesagt.")
    cancelled = page.locator("#appointments tbody tr").first
    expect(cancelled).to_contain_text("abgesagt")
    expect(cancelled).to_contain_text("Die Teilnehmerin ist erkrankt.")

    # The history shows who changed what.
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("angefragt")
    expect(history.nth(0)).to_contain_text("Jugendmigrationsdienst Leverkusen")
    expect(history.nth(1)).to_contain_text("angenommen")
    expect(history.nth(1)).to_contain_text("Caritasverband Leverkusen")
    expect(history.nth(1)).to_contain_text(CARITAS)
    jmd_person.check_accessibility("referral-detail-sender-after")


def test_rejecting_needs_a_reason(browse, jmd, evening_course):
    participant = register(jmd, family_name="Rahimi")
    consent(jmd, participant["id"], "caritas-leverkusen", ["needs"])
    referral = refer(jmd, participant["id"], evening_course)

    person = browse()
    page = person.sign_in(CARITAS)
    page.goto(person.url(f"/vermittlungen/{referral['id']}"))
    reason = page.get_by_label("Grund für „Ablehnen“")
    page.get_by_role("button", name="Ablehnen", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Grund für „Ablehnen“")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#referral-status")).to_contain_text("angefragt")
    person.check_accessibility("referral-reject-error")

    reason.fill("Der Kurs ist bis März voll.")
    page.get_by_role("button", name="Ablehnen", exact=True).click()
    expect(flash(page)).to_contain_text("Der Status ist jetzt: abgelehnt.")
    expect(page.locator("#referral-status")).to_contain_text("abgelehnt")
    expect(page.locator("#history tbody tr").last).to_contain_text("Der Kurs ist bis März voll.")
    # Closed: nothing more to do, no appointments.
    expect(page.get_by_role("button", name="Annehmen")).to_have_count(0)
    expect(page.get_by_role("button", name="Termin buchen")).to_have_count(0)


def test_without_consent_the_page_says_so_and_nothing_is_sent(browse, jmd, awo_counselling):
    participant = register(jmd, family_name="Noori", needs=("counselling",))
    person = browse()
    page = person.sign_in(JMD)
    page.goto(person.url(f"/vermittlungen/neu?participant_id={participant['id']}"))
    offer = page.locator(".offer-choice").filter(has_text="Migrationsberatung am Vormittag").first
    expect(offer).to_contain_text("Keine gültige Einwilligung für AWO Leverkusen.")
    offer.get_by_role("radio").check()
    warning = page.locator("#consent-missing")
    expect(warning).to_contain_text("liegt keine gültige Einwilligung der Person vor")
    link = warning.get_by_role("link", name="Einwilligung bei der Person erfassen")
    expect(link).to_have_attribute(
        "href", re.compile(rf"/teilnehmende/{participant['id']}#einwilligung"))
    person.check_accessibility("referral-new-no-consent")

    page.get_by_role("button", name="Vermittlung senden").click()
    refused = page.get_by_role("alert").filter(has_text="Keine gültige Einwilligung")
    expect(refused).to_contain_text(
        "Die Person hat nicht eingewilligt, für eine Vermittlung Daten mit awo-leverkusen")
    expect(refused.get_by_role("link", name="Einwilligung bei der Person erfassen")).to_be_visible()
    person.check_accessibility("referral-new-consent-refused")
    sent = jmd.get("/api/v1/referrals", params={"participant_id": participant["id"]}).json()
    assert sent == []


def test_another_alliance_gets_the_not_found_page(browse, jmd, evening_course):
    participant = register(jmd, family_name="Karimi")
    consent(jmd, participant["id"], "caritas-leverkusen", ["identity", "needs"])
    referral = refer(jmd, participant["id"], evening_course)

    person = browse()
    page = person.sign_in(MEERBUSCH)
    response = page.goto(person.url(f"/vermittlungen/{referral['id']}"))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Nicht gefunden")).to_be_visible()
    main = page.locator("main")
    for secret in (participant["pseudonym"], "Karimi", "Sprachkurs", "Caritas"):
        expect(main).not_to_contain_text(secret)
    person.check_accessibility("referral-not-found")
    # Its list does not show it either.
    page.goto(person.url("/vermittlungen/"))
    expect(page.locator("main")).not_to_contain_text(participant["pseudonym"])


def test_a_message_in_arabic_is_shown_right_to_left_to_both(browse, jmd, evening_course):
    participant = register(jmd, family_name="Yousef")
    consent(jmd, participant["id"], "caritas-leverkusen", ["languages"])
    referral = refer(jmd, participant["id"], evening_course)
    text = "مرحبا، الموعد غدا"

    person = browse()
    page = person.sign_in(JMD)
    page.goto(person.url(f"/vermittlungen/{referral['id']}"))
    page.get_by_label("Nachricht an Caritasverband Leverkusen").fill(text)
    page.get_by_role("button", name="Nachricht senden").click()
    expect(flash(page)).to_contain_text("Die Nachricht ist gesendet.")
    message = page.locator("#messages .message-text").filter(has_text=text)
    expect(message).to_have_attribute("dir", "rtl")
    person.check_accessibility("referral-messages")

    caritas = browse()
    cpage = caritas.sign_in(CARITAS)
    cpage.goto(caritas.url(f"/vermittlungen/{referral['id']}"))
    received = cpage.locator("#messages li").filter(has_text=text)
    expect(received).to_contain_text("Jugendmigrationsdienst Leverkusen")
    expect(received.locator(".message-text")).to_have_attribute("dir", "rtl")


def test_the_new_referral_page_needs_a_participant_of_ones_own(browse, platform):
    awo = platform.as_user(AWO)
    theirs = register(awo, family_name="Sultani")
    person = browse()
    page = person.sign_in(JMD)
    response = page.goto(person.url(f"/vermittlungen/neu?participant_id={theirs['id']}"))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Nicht gefunden")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(theirs["pseudonym"])
