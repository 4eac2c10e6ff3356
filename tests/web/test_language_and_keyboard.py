"""English as the second language of the pages, and working the pages with the keyboard alone."""
from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.platform


def test_a_case_worker_switches_the_pages_to_english_and_back(browse):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")
    page.get_by_label("Sprache der Seiten").select_option("en")
    page.get_by_role("button", name="Wechseln").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    navigation = page.get_by_role("navigation", name="Main navigation")
    expect(navigation.get_by_role("link", name="Participants")).to_be_visible()
    navigation.get_by_role("link", name="Participants").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")
    page.get_by_role("link", name=re.compile("Register")).first.click()
    # The API's German-worded check comes back in English too.
    page.get_by_label(re.compile("^Given name")).fill("Omid")
    page.get_by_role("button", name=re.compile("Register")).click()
    expect(page.get_by_role("alert")).to_contain_text("Please check")
    person.check_accessibility("participant-new-errors-english")
    assert "Pflichtfeld" not in page.content()
    page.get_by_label("Page language").select_option("de")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_be_visible()


def test_the_skip_link_and_the_registration_form_work_with_the_keyboard_alone(browse, platform):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")
    page.goto(person.url("/teilnehmende/neu"))
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Zum Inhalt springen")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    assert page.url.endswith("#inhalt")

    # Into the form's first field by Tab, then field after field.
    page.get_by_label("Vorname").focus()
    page.keyboard.type("Nasrin")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Nachname")).to_be_focused()
    page.keyboard.type("Tastatur")
    birth = date(date.today().year - 23, 3, 9)
    page.get_by_label("Geburtsdatum").focus()
    page.keyboard.type(birth.strftime("%m%d%Y"))  # the date field takes digits in its order
    page.get_by_label("Aufenthaltsstatus").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.get_by_role("button", name="Registrieren").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/teilnehmende/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Nasrin Tastatur")
