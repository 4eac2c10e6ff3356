"""A case worker's work with participants: registering, finding, consents, needs, importing."""
from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.web.sessions import end_sign_in

pytestmark = pytest.mark.platform

CASE_WORKER = "cw.jmd-leverkusen"
DETAIL_URL = re.compile(r"/teilnehmende/[0-9a-f-]{36}$")


def birth_date(age: int) -> str:
    """A birth date that makes the person ``age`` today (mid-January, so no birthday edge)."""
    today = date.today()
    year = today.year - age if today.month > 1 else today.year - age - 1
    return date(year, 1, 15).isoformat()


def marker() -> str:
    # Letters only: a name the API accepts and the search finds, different in every test.
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


def register(platform, **changes) -> dict:
    """A participant registered through the API, as the JMD case worker."""
    body = {
        "given_name": "Amal",
        "family_name": f"Testperson{marker()}",
        "birth_date": birth_date(21),
        "residence_status": "aufenthaltsgestattung",
        "languages": ["de"],
        "needs": [{"category": "language_course"}],
        **changes,
    }
    response = platform.as_user(CASE_WORKER).post("/api/v1/participants", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def org_name(platform, alias: str) -> str:
    organizations = platform.as_user(CASE_WORKER).get("/api/v1/organizations").json()
    return next(org["name"] for org in organizations if org["alias"] == alias)


def test_a_case_worker_registers_a_participant_and_lands_on_the_detail_page(browse, platform):
    family = f"Haddad{marker()}"
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Teilnehmende").click()
    expect(page.get_by_role("heading", level=1, name="Teilnehmende")).to_be_visible()
    person.check_accessibility("participants-list")

    page.get_by_role("link", name="Neu registrieren").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Teilnehmende Person registrieren")
    person.check_accessibility("participant-new")
    # The languages most needed come first, each language once.
    frequent = page.locator("#f-languages optgroup").first
    expect(frequent).to_have_attribute("label", "Häufig gebraucht")
    expect(frequent.locator("option[value='ar']")).to_have_text("Arabisch")
    expect(page.locator("#f-languages option[value='ar']")).to_have_count(1)
    page.get_by_label("Vorname").fill("Samira")
    page.get_by_label("Nachname").fill(family)
    page.get_by_label("Geburtsdatum").fill(birth_date(22))
    page.get_by_label("Aufenthaltsstatus").select_option("duldung")
    page.get_by_label("Staatsangehörigkeit").select_option("SY")
    page.get_by_label("Sprachen").select_option(["ar", "de"])
    page.get_by_label("Telefon").fill("+4917612345678")
    page.get_by_label("Erinnerungen an Termine per").select_option("sms")
    page.get_by_label("Sprachkurs").check()
    page.get_by_label("Berufsausbildung").check()
    page.get_by_role("button", name="Registrieren").click()

    expect(page).to_have_url(DETAIL_URL)
    registered = platform.as_user(CASE_WORKER).get(
        "/api/v1/participants", params={"q": family}).json()
    assert len(registered) == 1
    pseudonym = registered[0]["pseudonym"]
    expect(page.get_by_text(f"Registriert unter dem Pseudonym {pseudonym}.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text(pseudonym)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Samira {family}")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Duldung")
    expect(facts).to_contain_text("Syrien")
    expect(facts).to_contain_text("+4917612345678")
    expect(page.locator("#needs")).to_contain_text("Sprachkurs")
    expect(page.locator("#needs")).to_contain_text("Berufsausbildung")
    person.check_accessibility("participant-detail-new")


def test_the_apis_messages_stand_beside_the_fields_and_the_values_are_kept(browse):
    family = f"Karimi{marker()}"
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/neu"))
    page.get_by_label("Vorname").fill("Reza")
    page.get_by_label("Nachname").fill(family)
    page.get_by_label("Geburtsdatum").fill(birth_date(30))
    page.get_by_label("Aufenthaltsstatus").select_option("aufenthaltserlaubnis")
    page.get_by_label("Telefon").fill("0176 123")
    page.get_by_label("Wohnort").fill("Leverkusen")
    page.get_by_role("button", name="Registrieren").click()

    expect(page).to_have_url(person.url("/teilnehmende/neu"))
    expect(page.get_by_role("alert")).to_contain_text("Bitte prüfen Sie Ihre Angaben")
    # Each message beside its field and tied to it (the field's accessible description).
    phone = page.get_by_label("Telefon")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(re.compile("E.164"))
    expect(page.locator("#f-contact-phone-error")).to_be_visible()
    # The age range is told at the same time, in German.
    birth = page.get_by_label("Geburtsdatum")
    expect(birth).to_have_attribute("aria-invalid", "true")
    expect(birth).to_have_accessible_description(re.compile(r"18 bis 27.*Person 30"))
    expect(page.get_by_label("Vorname")).to_have_value("Reza")
    expect(page.get_by_label("Nachname")).to_have_value(family)
    expect(page.get_by_label("Geburtsdatum")).to_have_value(birth_date(30))
    expect(phone).to_have_value("0176 123")
    expect(page.get_by_label("Wohnort")).to_have_value("Leverkusen")
    expect(page.get_by_label("Aufenthaltsstatus")).to_have_value("aufenthaltserlaubnis")
    person.check_accessibility("participant-new-errors-phone")

    # With the phone number put right, the age message remains.
    phone.fill("+4917612345678")
    page.get_by_role("button", name="Registrieren").click()
    expect(page.get_by_role("alert")).to_contain_text("Bitte prüfen Sie Ihre Angaben")
    birth = page.get_by_label("Geburtsdatum")
    expect(birth).to_have_attribute("aria-invalid", "true")
    expect(birth).to_have_accessible_description(re.compile(r"18 bis 27.*Person 30"))
    expect(page.locator("#f-birth-date-error")).to_contain_text("18 bis 27")
    summary_link = page.get_by_role("alert").get_by_role("link", name=re.compile("18 bis 27"))
    expect(summary_link).to_have_attribute("href", "#f-birth-date")
    expect(birth).to_have_value(birth_date(30))
    expect(page.get_by_label("Telefon")).to_have_value("+4917612345678")
    expect(page.get_by_label("Nachname")).to_have_value(family)
    expect(page.get_by_label("Begründung für eine Ausnahme")).to_have_accessible_description(
        re.compile("jünger als 18 oder älter als 27"))
    person.check_accessibility("participant-new-errors")


def test_a_form_sent_after_the_session_ended_is_kept_over_the_new_sign_in(browse, platform):
    family = f"Nouri{marker()}"
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/neu"))
    page.get_by_label("Vorname").fill("Yasmin")
    page.get_by_label("Nachname").fill(family)
    page.get_by_label("Geburtsdatum").fill(birth_date(19))
    page.get_by_label("Aufenthaltsstatus").select_option("duldung")
    page.get_by_label("Sprachen").select_option(["fa", "de"])
    page.get_by_label("Beratung", exact=True).check()
    # The sign-in ends: the identity provider's session is gone, the tokens are refused.
    end_sign_in(platform, person.context)
    page.get_by_role("button", name="Registrieren").click()

    person.fill_login(CASE_WORKER)
    expect(page).to_have_url(person.url("/teilnehmende/neu"))
    expect(page.get_by_text("Ihre Sitzung war abgelaufen").first).to_be_visible()
    expect(page.get_by_label("Vorname")).to_have_value("Yasmin")
    expect(page.get_by_label("Nachname")).to_have_value(family)
    expect(page.get_by_label("Geburtsdatum")).to_have_value(birth_date(19))
    expect(page.get_by_label("Aufenthaltsstatus")).to_have_value("duldung")
    assert sorted(page.get_by_label("Sprachen").evaluate(
        "select => [...select.selectedOptions].map(o => o.value)")) == ["de", "fa"]
    expect(page.get_by_label("Beratung", exact=True)).to_be_checked()
    person.check_accessibility("participant-new-kept")
    # Nothing was registered before the person sent the form again.
    client = platform.as_user(CASE_WORKER)
    assert client.get("/api/v1/participants", params={"q": family}).json() == []

    page.get_by_role("button", name="Registrieren").click()
    expect(page).to_have_url(DETAIL_URL)
    expect(page.get_by_text("Registriert unter dem Pseudonym")).to_be_visible()
    assert len(client.get("/api/v1/participants", params={"q": family}).json()) == 1


def test_consent_is_granted_shown_and_withdrawn(browse, platform):
    participant = register(platform)
    caritas = org_name(platform, "caritas-leverkusen")
    valid_until = (date.today() + timedelta(days=180)).isoformat()
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    expect(page.get_by_text("Noch keine Einwilligung erfasst.")).to_be_visible()
    # The own organisation is no recipient.
    recipients = page.get_by_label("Empfangende Organisation")
    expect(recipients.locator("option[value='jmd-leverkusen']")).to_have_count(0)
    recipients.select_option("caritas-leverkusen")
    page.get_by_role("checkbox", name="Identität (Name, Geburtsdatum)").check()
    page.get_by_role("checkbox", name="Sprachen", exact=True).check()
    page.get_by_role("checkbox", name="Bedarfe", exact=True).check()
    page.get_by_label("Gültig bis").fill(valid_until)
    page.get_by_role("button", name="Einwilligung erfassen").click()

    expect(page.get_by_text(f"Einwilligung für {caritas} erfasst.")).to_be_visible()
    row = page.locator("#consents tbody tr", has_text=caritas)
    expect(row).to_contain_text("Identität (Name, Geburtsdatum)")
    expect(row).to_contain_text("Bedarfe")
    expect(row).not_to_contain_text("Kontakt")
    expect(row).to_contain_text("gültig")
    person.check_accessibility("participant-detail")

    row.get_by_role("button", name=re.compile(rf"Widerrufen\W+Einwilligung für {caritas}")).click()
    expect(page.get_by_text("Einwilligung widerrufen.")).to_be_visible()
    row = page.locator("#consents tbody tr", has_text=caritas)
    expect(row).to_contain_text("widerrufen")
    expect(row.get_by_role("button")).to_have_count(0)
    consents = platform.as_user(CASE_WORKER).get(
        f"/api/v1/participants/{participant['id']}/consents").json()
    assert [c["withdrawn_at"] is not None for c in consents] == [True]


def test_a_consent_without_categories_shows_the_apis_message_beside_the_field(browse, platform):
    participant = register(platform)
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    page.get_by_label("Empfangende Organisation").select_option("caritas-leverkusen")
    page.get_by_label("Gültig bis").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Einwilligung erfassen").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#f-data-categories-error")).to_be_visible()
    expect(page.get_by_label("Empfangende Organisation")).to_have_value("caritas-leverkusen")
    person.check_accessibility("participant-detail-consent-errors")


def test_needs_are_added_and_their_status_changed(browse, platform):
    participant = register(platform)
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    page.get_by_role("combobox", name="Bedarf (Pflichtfeld)").select_option("housing")
    page.get_by_label("Notiz zum Bedarf").fill("Sucht ein WG-Zimmer")
    page.get_by_role("button", name="Bedarf hinzufügen").click()
    expect(page.get_by_text("Bedarf „Wohnen“ hinzugefügt.")).to_be_visible()
    housing = page.locator("#needs li", has_text="Wohnen")
    expect(housing).to_contain_text("Sucht ein WG-Zimmer")
    expect(housing).to_contain_text("offen")

    housing.get_by_role("button", name=re.compile(r"Als erfüllt markieren\W+Wohnen")).click()
    expect(page.get_by_text("Bedarf „Wohnen“ ist jetzt: erfüllt.")).to_be_visible()
    expect(page.locator("#needs li", has_text="Wohnen")).to_contain_text("erfüllt")
    person.check_accessibility("participant-detail-needs")


def test_search_by_family_name_is_sent_by_post_and_keeps_the_name_out_of_the_url(
        browse, platform):
    found = register(platform, given_name="Hamid")
    other = register(platform, given_name="Lina")
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/"))
    page.get_by_label("Vor- oder Nachname").fill(found["family_name"])
    page.get_by_role("button", name="Suchen").click()

    expect(page.get_by_role("heading", name="Suchergebnis")).to_be_visible()
    expect(page.get_by_text(f"Suche nach „{found['family_name']}“: 1 Treffer")).to_be_visible()
    table = page.locator("#participants")
    expect(table.get_by_role("link", name=found["pseudonym"])).to_be_visible()
    expect(table).to_contain_text(f"Hamid {found['family_name']}")
    expect(table).not_to_contain_text(other["family_name"])
    assert found["family_name"].lower() not in page.url.lower()
    person.check_accessibility("participants-search")

    table.get_by_role("link", name=found["pseudonym"]).click()
    expect(page).to_have_url(person.url(f"/teilnehmende/{found['id']}"))


def test_the_list_is_filtered_by_need_category(browse, platform):
    legal = register(platform, needs=[{"category": "legal_advice"}])
    housing = register(platform, needs=[{"category": "housing"}])
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/"))
    expect(page.locator("#participants")).to_contain_text(housing["pseudonym"])
    page.get_by_label("Bedarf", exact=True).select_option("legal_advice")
    page.get_by_role("button", name="Filtern").click()

    expect(page).to_have_url(re.compile(r"need_category=legal_advice"))
    table = page.locator("#participants")
    expect(table.get_by_role("link", name=legal["pseudonym"])).to_be_visible()
    expect(table).not_to_contain_text(housing["pseudonym"])
    for row in table.locator("tbody tr").all():
        expect(row.locator("td").nth(4)).to_contain_text("Rechtsberatung")
    expect(page.get_by_label("Bedarf", exact=True)).to_have_value("legal_advice")
    person.check_accessibility("participants-filtered")


def test_a_csv_list_is_imported_with_a_row_report(browse, platform):
    family = f"Import{marker()}"
    csv_text = "\n".join([
        "Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus;Sprachen;Bedarfe",
        f"Hiba;{family};15.01.{birth_date(20)[:4]};duldung;ar,de;language_course",
        f"Omid;{family};{birth_date(23)};aufenthaltsgestattung;fa;counselling",
        f"Broken;{family};31.02.2003;visa;de;housing",
    ])
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/"))
    page.get_by_role("link", name="Liste importieren").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Liste importieren")
    person.check_accessibility("participant-import")

    # All or nothing (the default): nothing is imported, the bad row is named.
    file_input = page.get_by_label("Datei (CSV oder XLSX)")
    file_input.set_input_files(
        files=[{"name": "liste.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}])
    page.get_by_role("button", name="Importieren").click()
    expect(page.get_by_role("alert")).to_contain_text("Es wurde nichts importiert")
    errors = page.locator("#row-errors")
    expect(errors.locator("tbody tr", has_text="Geburtsdatum")).to_contain_text("4")
    expect(page.locator("#imported")).to_have_count(0)
    client = platform.as_user(CASE_WORKER)
    assert client.get("/api/v1/participants", params={"q": family}).json() == []

    # The valid rows only: two imported, the bad row reported with its fields.
    page.get_by_label("Datei (CSV oder XLSX)").set_input_files(
        files=[{"name": "liste.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}])
    page.get_by_label("Wenn Zeilen Fehler haben").select_option("valid_rows")
    page.get_by_role("button", name="Importieren").click()
    expect(page.get_by_text("2 von 3 Zeilen importiert.")).to_be_visible()
    imported = page.locator("#imported tbody tr")
    expect(imported).to_have_count(2)
    expect(imported.nth(0).locator("td").first).to_have_text("2")
    expect(imported.nth(1).locator("td").first).to_have_text("3")
    error_rows = page.locator("#row-errors tbody tr")
    expect(error_rows.filter(has_text="Geburtsdatum").locator("td").first).to_have_text("4")
    expect(error_rows.filter(has_text="Aufenthaltsstatus").locator("td").first).to_have_text("4")
    person.check_accessibility("participant-import-report")

    listed = client.get("/api/v1/participants", params={"q": family}).json()
    assert {p["given_name"] for p in listed} == {"Hiba", "Omid"}
    hiba = next(p for p in listed if p["given_name"] == "Hiba")
    imported.nth(0).get_by_role("link", name=hiba["pseudonym"]).click()
    expect(page).to_have_url(person.url(f"/teilnehmende/{hiba['id']}"))


def test_a_long_list_is_imported_in_the_background_with_its_progress(browse, platform):
    """Above IMPORT_SYNC_MAX_ROWS (1,000) the worker imports: the page shows the progress, a
    link to refresh it, and then the same report; another organisation gets "Nicht gefunden"."""
    family = f"Lang{marker()}"
    lines = ["Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus"]
    lines += [f"Person{'abcdefghij'[n % 10]};{family};{birth_date(22)};duldung"
              for n in range(1_100)]
    lines.append(f"Broken;{family};31.02.2003;duldung")
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url("/teilnehmende/import"))
    page.get_by_label("Datei (CSV oder XLSX)").set_input_files(files=[
        {"name": "liste.csv", "mimeType": "text/csv", "buffer": "\n".join(lines).encode()}])
    page.get_by_label("Wenn Zeilen Fehler haben").select_option("valid_rows")
    page.get_by_role("button", name="Importieren").click()
    expect(page).to_have_url(re.compile(r"/teilnehmende/import/[0-9a-f-]{36}$"))
    progress_url = page.url
    counts = page.locator(".import-counts")
    checked = False
    for _attempt in range(240):
        # The report, or the progress with its link to refresh it (a loaded machine is slow).
        expect(page.locator(".import-counts, #progress-heading").first).to_be_visible(
            timeout=30_000)
        if counts.count():
            break
        if not checked:
            person.check_accessibility("participant-import-progress")
            checked = True
        page.wait_for_timeout(500)
        page.get_by_role("link", name="Fortschritt aktualisieren").click()
        page.wait_for_load_state()
    expect(counts).to_have_text("1100 von 1101 Zeilen importiert.")
    expect(page.locator("#imported tbody tr")).to_have_count(1_100)
    expect(page.locator("#row-errors tbody tr").first.locator("td").first).to_have_text("1102")
    person.check_accessibility("participant-import-background-report")

    other = browse()
    other_page = other.sign_in("cw.stadt-meerbusch")
    response = other_page.goto(progress_url)
    assert response is not None and response.status == 404
    expect(other_page.get_by_role("heading", level=1)).to_have_text("Nicht gefunden")


def test_another_organisation_gets_the_not_found_page_and_nothing_of_the_person(
        browse, platform):
    participant = register(platform)
    person = browse()
    page = person.sign_in("cw.stadt-meerbusch")
    response = page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Nicht gefunden")
    content = page.content()
    assert participant["family_name"] not in content
    assert participant["pseudonym"] not in content
    person.check_accessibility("participant-not-found")


def test_right_to_left_languages_are_marked_as_such(browse, platform):
    participant = register(platform, languages=["ar", "fa", "de"])
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    languages = page.locator("#languages")
    expect(languages.locator("span[lang='ar']")).to_have_attribute("dir", "rtl")
    expect(languages.locator("span[lang='fa']")).to_have_attribute("dir", "rtl")
    expect(languages.locator("span[lang='ar']")).to_have_text("العربية")
    expect(languages).to_contain_text("Arabisch")
    expect(languages).to_contain_text("Persisch")
    expect(languages.locator("span[lang='de']")).not_to_have_attribute("dir", "rtl")
    person.check_accessibility("participant-detail-rtl")


def test_master_data_are_changed_and_a_change_meanwhile_is_not_overwritten(browse, platform):
    participant = register(platform, municipality="Leverkusen",
                           contact={"phone": "+4917612345678", "preferred_channel": "sms"})
    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    page.get_by_role("link", name="Angaben ändern").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Angaben ändern")
    expect(page.get_by_label("Wohnort")).to_have_value("Leverkusen")
    expect(page.get_by_label("Telefon")).to_have_value("+4917612345678")
    person.check_accessibility("participant-edit")
    page.get_by_label("Wohnort").fill("Leichlingen")
    page.get_by_label("Höchster Abschluss").select_option("lower_secondary")
    page.get_by_label("Schuljahre").fill("9")
    page.get_by_role("button", name="Änderungen speichern").click()

    expect(page.get_by_text("Die Angaben wurden gespeichert.")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Leichlingen")
    expect(facts).to_contain_text("Sekundarstufe I")
    expect(facts).to_contain_text("+4917612345678")

    # Someone else changes the person while the form is open: nothing is overwritten.
    page.get_by_role("link", name="Angaben ändern").click()
    page.get_by_label("Wohnort").fill("Burscheid")
    client = platform.as_user(CASE_WORKER)
    current = client.get(f"/api/v1/participants/{participant['id']}")
    changed = client.patch(f"/api/v1/participants/{participant['id']}",
                           json={"municipality": "Opladen"},
                           headers={"If-Match": current.headers["ETag"]})
    assert changed.status_code == 200, changed.text
    page.get_by_role("button", name="Änderungen speichern").click()
    expect(page.get_by_role("alert")).to_contain_text("Inzwischen geändert")
    person.check_accessibility("participant-edit-stale")
    assert client.get(f"/api/v1/participants/{participant['id']}").json()[
        "municipality"] == "Opladen"


def test_the_participants_referrals_are_listed_with_status_and_link(browse, platform):
    participant = register(platform)
    client = platform.as_user(CASE_WORKER)
    consent = client.post(f"/api/v1/participants/{participant['id']}/consents", json={
        "recipient_org": "caritas-leverkusen", "data_categories": ["needs"],
        "purpose": "referral", "valid_until": (date.today() + timedelta(days=90)).isoformat()})
    assert consent.status_code == 201, consent.text
    referral = client.post("/api/v1/referrals", json={
        "participant_id": participant["id"], "to_org": "caritas-leverkusen",
        "need_category": "language_course"})
    assert referral.status_code == 201, referral.text
    caritas = org_name(platform, "caritas-leverkusen")

    person = browse()
    page = person.sign_in(CASE_WORKER)
    page.goto(person.url(f"/teilnehmende/{participant['id']}"))
    row = page.locator("#referrals tbody tr", has_text=caritas)
    expect(row).to_contain_text("angefragt")
    expect(row).to_contain_text("Sprachkurs")
    expect(row.get_by_role("link", name=re.compile("Vermittlung öffnen"))).to_have_attribute(
        "href", f"/vermittlungen/{referral.json()['id']}")
    expect(page.get_by_role("link", name="Vermitteln", exact=True)).to_have_attribute(
        "href", f"/vermittlungen/neu?participant_id={participant['id']}")
    person.check_accessibility("participant-detail-referrals")


def test_roles_other_than_case_worker_are_told_the_pages_are_not_theirs(browse):
    person = browse()
    page = person.sign_in("coord.leverkusen")
    expect(page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Teilnehmende")).to_have_count(0)
    response = page.goto(person.url("/teilnehmende/neu"))
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Nicht erlaubt")
    expect(page.locator("form.stack")).to_have_count(0)


def test_a_long_list_pages_forward_and_back(browse, platform):
    api = platform.as_user("cw.jobservice-leverkusen")
    for number in range(30):
        response = api.post("/api/v1/participants", json={
            "given_name": "Seite", "family_name": f"Blättern{marker()}",
            "birth_date": birth_date(20 + number % 7), "residence_status": "duldung"})
        assert response.status_code == 201, response.text
    person = browse()
    page = person.sign_in("cw.jobservice-leverkusen")
    page.goto(person.url("/teilnehmende/"))
    pager = page.get_by_role("navigation", name="Seiten")
    expect(pager).to_contain_text(re.compile(r"Seite 1 von \d+"))
    pager.get_by_role("link", name="Nächste Seite").click()
    expect(page.get_by_role("heading", level=1, name="Teilnehmende")).to_be_visible()
    expect(page.get_by_role("navigation", name="Seiten")).to_contain_text(
        re.compile(r"Seite 2 von \d+"))
    person.check_accessibility("participants-list-page-2")
    page.get_by_role("navigation", name="Seiten").get_by_role(
        "link", name="Vorherige Seite").click()
    expect(page.get_by_role("navigation", name="Seiten")).to_contain_text(
        re.compile(r"Seite 1 von \d+"))
