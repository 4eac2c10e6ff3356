"""The offer catalogue in the browser: a case worker adds and changes her organisation's offers;
partners in the alliance read them but cannot change them."""
from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect


def edit_link(title: str) -> re.Pattern:
    return re.compile(rf"^Bearbeiten\W+{re.escape(title)}$")


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def test_caritas_case_worker_creates_an_offer_sees_it_in_the_catalogue_and_edits_it(browse):
    person = browse()
    page = person.sign_in("cw.caritas-leverkusen")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Angebote").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Angebote im Bündnis")
    page.get_by_role("link", name="Neues Angebot").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Neues Angebot")

    # A title longer than the API allows: its message beside the field, the rest kept.
    page.get_by_label("Titel").fill("S" * 201)
    page.get_by_label("Bereich").select_option("language_course")
    page.get_by_label("Ort (Kommune)").fill("Leverkusen-Opladen")
    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.locator("#f-title-error")).to_contain_text("200")
    expect(page.get_by_label("Ort (Kommune)")).to_have_value("Leverkusen-Opladen")
    expect(page.get_by_label("Bereich")).to_have_value("language_course")

    title = unique("Sprachcafé am Abend")
    page.get_by_label("Titel").fill(title)
    page.get_by_label("Beschreibung").fill("Deutsch üben im Gespräch.\nFür alle Niveaus.")
    page.get_by_label("Sprachen").select_option(["de", "ar"])
    page.get_by_label("Form", exact=True).select_option("in_person")
    page.get_by_label("Duldung").check()
    page.get_by_label("Aufenthaltsgestattung").check()
    page.get_by_label("Mindestalter").fill("18")
    page.get_by_label("Höchstalter").fill("27")
    page.get_by_label("Freie Plätze").fill("12")
    page.get_by_label("Zeiten").fill("dienstags 17–19 Uhr")
    page.get_by_label("Kontakt für Partner").fill("Sprachcafé-Team, Tel. 0214 000000")
    expect(page.get_by_label("Aktiv – im Katalog sichtbar")).to_be_checked()
    page.get_by_role("button", name="Angebot speichern").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_text("Das Angebot ist im Katalog gespeichert.")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Caritasverband Leverkusen")
    expect(facts).to_contain_text("Sprachkurs")
    expect(facts).to_contain_text("18 bis 27 Jahre")
    expect(facts).to_contain_text("Duldung")
    expect(facts.locator('span[lang="ar"][dir="rtl"]')).to_have_text("العربية")
    person.check_accessibility("offer-detail")

    # In the catalogue, with an edit link in her organisation's own list too.
    page.get_by_role("link", name="Zurück zum Katalog").click()
    page.get_by_label("Anbietende Organisation").select_option("caritas-leverkusen")
    page.get_by_label("Bereich").select_option("language_course")
    page.get_by_role("button", name="Filtern").click()
    row = page.locator("#catalogue tbody tr").filter(has_text=title)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Caritasverband Leverkusen")
    expect(row).to_contain_text("vor Ort")
    expect(row).to_contain_text("12")
    expect(row.locator('span[lang="ar"][dir="rtl"]')).to_have_text("العربية")
    expect(page.locator("#own-offers").get_by_role("link", name=edit_link(title)))\
        .to_be_visible()
    person.check_accessibility("offers-catalogue")

    # Editing: an age range the API refuses shows its message beside the field.
    row.get_by_role("link", name=edit_link(title)).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Angebot bearbeiten")
    expect(page.get_by_label("Titel")).to_have_value(title)
    page.get_by_label("Mindestalter").fill("30")
    page.get_by_label("Höchstalter").fill("20")
    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.locator("#f-max-age-error")).to_contain_text(
        "Das Höchstalter darf nicht unter dem Mindestalter liegen")
    expect(page.get_by_label("Höchstalter")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Mindestalter")).to_have_value("30")
    expect(page.get_by_role("alert")).to_contain_text("Bitte prüfen Sie Ihre Angaben")
    person.check_accessibility("offer-edit-errors")

    page.get_by_label("Höchstalter").fill("35")
    page.get_by_label("Freie Plätze").fill("")
    page.get_by_label("Duldung").uncheck()
    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.get_by_text("Die Änderungen am Angebot sind gespeichert.")).to_be_visible()
    expect(facts).to_contain_text("30 bis 35 Jahre")
    expect(facts).to_contain_text("nicht begrenzt")
    expect(facts).not_to_contain_text("Duldung")


def test_a_change_made_meanwhile_is_not_overwritten(browse, platform):
    caritas = platform.as_user("cw.caritas-leverkusen")
    title = unique("Bewerbungstraining")
    created = caritas.post("/api/v1/offers", json={"title": title, "category": "employment"})
    assert created.status_code == 201, created.text
    offer = created.json()
    person = browse()
    page = person.sign_in("cw.caritas-leverkusen")
    page.goto(person.url(f"/angebote/{offer['id']}/bearbeiten"))
    page.get_by_label("Freie Plätze").fill("4")

    # A colleague changes the offer while the form is open.
    current = caritas.get(f"/api/v1/offers/{offer['id']}")
    changed = caritas.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 9},
                            headers={"If-Match": current.headers["ETag"]})
    assert changed.status_code == 200, changed.text

    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.get_by_role("alert")).to_contain_text("inzwischen geändert")
    assert caritas.get(f"/api/v1/offers/{offer['id']}").json()["capacity"] == 9
    page.get_by_role("link", name="Aktuellen Stand des Angebots laden").click()
    expect(page.get_by_label("Freie Plätze")).to_have_value("9")


def test_awo_reads_the_caritas_offer_but_cannot_change_it(browse, platform):
    caritas = platform.as_user("cw.caritas-leverkusen")
    title = unique("Beratung auf Arabisch")
    created = caritas.post("/api/v1/offers", json={
        "title": title, "category": "counselling", "languages": ["ar"],
        "description": "استشارة حول التدريب المهني", "mode": "phone"})
    assert created.status_code == 201, created.text
    offer = created.json()

    person = browse()
    page = person.sign_in("cw.awo-leverkusen")
    page.goto(person.url("/angebote/?category=counselling&provider_org=caritas-leverkusen"))
    row = page.locator("#catalogue tbody tr").filter(has_text=title)
    expect(row).to_have_count(1)
    expect(row.locator('span[lang="ar"]')).to_have_attribute("dir", "rtl")
    expect(row.get_by_role("link", name=re.compile("Bearbeiten"))).to_have_count(0)

    row.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(".offer-text")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("link", name="Angebot bearbeiten")).to_have_count(0)

    response = page.goto(person.url(f"/angebote/{offer['id']}/bearbeiten"))
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Nicht erlaubt")
    # …and so does the API, which the page only anticipates.
    awo = platform.as_user("cw.awo-leverkusen")
    etag = awo.get(f"/api/v1/offers/{offer['id']}").headers["ETag"]
    refused = awo.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 1},
                        headers={"If-Match": etag})
    assert refused.status_code == 403


def test_the_provider_publishes_an_offer_in_the_open_directory_and_takes_it_back(browse,
                                                                                  platform):
    import requests

    person = browse()
    page = person.sign_in("cw.caritas-leverkusen")
    page.goto(person.url("/angebote/neu"))
    public = page.get_by_label("Öffentlich – auch ohne Anmeldung lesbar")
    expect(public).not_to_be_checked()  # nothing is published unless the provider chooses to
    expect(page.locator("#f-public")).to_contain_text("ohne Daten über Personen")
    person.check_accessibility("offer-form-public")

    title = unique("Offene Sprechstunde")
    page.get_by_label("Titel").fill(title)
    page.get_by_label("Bereich").select_option("counselling")
    page.get_by_label("Kontakt für Partner").fill("Frau Beispiel, 0214 123456")
    public.check()
    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("dl.facts .offer-public")).to_have_text(
        "öffentlich, auch ohne Anmeldung lesbar")
    offer_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    # Anyone reads it in the directory, without a token, and without the contact.
    directory = requests.get(f"{platform.gateway_url}/hsds/services/{offer_id}", timeout=10)
    assert directory.status_code == 200
    assert directory.json()["name"] == title
    assert "Beispiel" not in directory.text and "0214" not in directory.text

    # Taken back: the switch is kept in the form, and the directory forgets the offer.
    page.get_by_role("link", name="Angebot bearbeiten").click()
    expect(public).to_be_checked()
    public.uncheck()
    page.get_by_role("button", name="Angebot speichern").click()
    expect(page.locator("dl.facts .offer-public")).to_have_text(
        "nicht öffentlich, nur für Partner im Bündnis")
    gone = requests.get(f"{platform.gateway_url}/hsds/services/{offer_id}", timeout=10)
    assert gone.status_code == 404
