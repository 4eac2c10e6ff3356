"""Reports in the browser: the core group and the ministry read figures without personal data,
with suppressed cells shown as such, charts drawn on the server, and CSV/XLSX downloads; case
workers have no reports."""
from __future__ import annotations

import base64
import csv
import io
import re
import time
import uuid
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.support.platform import ApiClient

# The report's columns as the page names them (web.i18n's report_column labels).
COLUMN_WORDS = {
    "alliance": "Bündnis", "status": "Status", "count": "Anzahl",
    "median_hours_to_first_answer": "Antwortzeit (Median, Stunden)",
    "acceptance_rate": "Annahmequote", "completion_rate": "Abschlussquote",
    "overdue_open": "offen und überfällig",
}
STATUS_WORDS = {"requested": "angefragt", "accepted": "angenommen"}


def create(client: ApiClient, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def leverkusen_referrals(platform) -> list[dict]:
    """Twelve young people registered by the JMD Leverkusen, each referred to the Caritas with
    their consent; the Caritas accepted seven. Returns the participants as intake made them."""
    jmd = platform.as_user("cw.jmd-leverkusen")
    caritas = platform.as_user("cw.caritas-leverkusen")
    birth = date.today().replace(year=date.today().year - 22).isoformat()
    participants = []
    for index in range(12):
        participant = create(jmd, "/api/v1/participants", {
            "given_name": f"Berichtsperson{uuid.uuid4().hex[:6]}",
            "family_name": f"Zahlenfrei{uuid.uuid4().hex[:6]}",
            "birth_date": birth, "residence_status": "duldung", "languages": ["ar", "de"],
            "municipality": "Leverkusen", "needs": [{"category": "language_course"}],
        })
        create(jmd, f"/api/v1/participants/{participant['id']}/consents", {
            "recipient_org": "caritas-leverkusen", "data_categories": ["identity", "needs"],
            "purpose": "referral",
            "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        })
        referral = create(jmd, "/api/v1/referrals", {
            "participant_id": participant["id"], "to_org": "caritas-leverkusen",
            "need_category": "language_course"})
        if index < 7:
            accepted = caritas.post(f"/api/v1/referrals/{referral['id']}/status",
                                    json={"status": "accepted"})
            assert accepted.status_code == 200, accepted.text
        participants.append({**participant, "referral_id": referral["id"]})
    return participants


def cells(page: Page, selector: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()]
        for row in page.locator(selector).all()
    ]


def reload_until(page: Page, check, *, timeout: float = 90) -> None:
    """Reports read what the services have taken in from each other's events: reload until
    the figures are there."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the report did not show the figures in time"
        time.sleep(2)
        page.reload()


def test_core_group_reads_the_alliance_report_without_personal_data(
        browse, leverkusen_referrals, tmp_path):
    person = browse()
    page = person.sign_in("core.caritas-leverkusen")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Berichte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Berichte")
    expect(page.get_by_text("Sie sehen Ihr Bündnis: leverkusen.")).to_be_visible()

    accepted_row = page.locator("#report-referrals tbody tr").filter(has_text="angenommen")
    gaps_row = page.locator("#report-gaps tbody tr").filter(has_text="Sprachkurs")

    def figures_shown() -> bool:
        # the referrals are counted at once; the open needs arrive as intake's events
        if accepted_row.count() != 1 or gaps_row.count() != 1:
            return False
        return gaps_row.locator("td").nth(1).inner_text().strip() not in ("0", "–", "")
    reload_until(page, figures_shown)

    table = page.locator("#report-referrals")
    expect(table.locator("caption")).to_contain_text("Vermittlungen (leverkusen) nach Status")
    expect(table.locator("thead th")).to_have_text(
        [COLUMN_WORDS[c] for c in ("alliance", "status", "count",
                                   "median_hours_to_first_answer", "acceptance_rate",
                                   "completion_rate", "overdue_open")])
    # The accepted referrals have not ended yet: a completion rate over them would be about
    # fewer than five people, so it is suppressed and says so.
    completion = accepted_row.locator("td").nth(4)
    expect(completion).to_have_text("unterdrückt")
    expect(completion).to_have_class(re.compile(r"\bsuppressed\b"))
    expect(completion).to_have_class(re.compile(r"\bnumber\b"))
    expect(page.locator("#suppression-note")).to_contain_text(
        "Werte unter 5 werden nicht gezeigt, damit niemand erkennbar wird")
    expect(page.locator("#report-gaps caption")).to_be_visible()
    expect(page.locator("#report-stuck caption")).to_be_visible()

    # No names, pseudonyms or ids of the people behind the figures.
    content = page.content()
    for participant in leverkusen_referrals:
        for value in (participant["given_name"], participant["family_name"],
                      participant["pseudonym"], participant["id"],
                      participant["referral_id"]):
            assert value not in content
    assert not re.search(r"\bTN-[A-Z0-9]", content)

    # Charts: drawn on the server, described, nothing fetched from elsewhere.
    chart = page.get_by_role("img", name=re.compile("Anzahl der Vermittlungen nach Status"))
    expect(chart).to_be_visible()
    alt = chart.get_attribute("alt")
    assert alt.startswith("Balkendiagramm") and "Tabelle darunter" in alt
    src = chart.get_attribute("src")
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    assert "<script" not in svg and "href=" not in svg and "@import" not in svg
    assert not re.search(r"url\((?!#)", svg)
    # The response-time chart is drawn when the table shows at least one median (the alliance's
    # other referrals, from other tests, can leave every median suppressed).
    headers = [h.strip() for h in page.locator("#report-referrals thead th").all_inner_texts()]
    column = headers.index("Antwortzeit (Median, Stunden)")
    medians = [row[column] for row in cells(page, "#report-referrals tbody tr")]
    shown = any(re.search(r"\d", median) for median in medians)
    expect(page.get_by_role("img", name=re.compile("Antwortzeit|Stunden bis zur ersten Antwort")))\
        .to_have_count(1 if shown else 0)
    expect(page.get_by_role("img", name=re.compile("offene Bedarfe"))).to_have_count(1)
    person.check_accessibility("reports-alliance")

    # The CSV holds what the table shows, a suppressed cell as "suppressed".
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Als CSV herunterladen (Vermittlungen)").click()
    download = csv_download.value
    assert re.fullmatch(r"bericht-vermittlungen-leverkusen-stand-\d{4}-\d{2}-\d{2}\.csv",
                        download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header, rows = lines[0], lines[1:]
    assert [COLUMN_WORDS[c] for c in header] == table.locator("thead th").all_inner_texts()
    shown = cells(page, "#report-referrals tbody tr")
    assert len(rows) == len(shown)
    for row, seen in zip(rows, shown, strict=True):
        record = dict(zip(header, row, strict=True))
        assert seen[0] == record["alliance"] == "leverkusen"
        assert seen[1] == STATUS_WORDS.get(record["status"], seen[1])
        assert seen[2] == ("unterdrückt" if record["count"] == "suppressed"
                           else record["count"])
        assert (seen[5] == "unterdrückt") == (record["completion_rate"] == "suppressed")
    accepted = next(row for row in rows if row[1] == "accepted")
    assert accepted[header.index("completion_rate")] == "suppressed"

    with page.expect_download() as xlsx_download:
        page.get_by_role("link", name="Als Excel-Datei (XLSX) herunterladen (Vermittlungen)")\
            .click()
    download = xlsx_download.value
    assert download.suggested_filename.endswith(".xlsx")
    assert download.suggested_filename.startswith("bericht-vermittlungen-leverkusen-")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    sheet = load_workbook(path).active
    table_rows = [["" if v is None else str(v) for v in row]
                  for row in sheet.iter_rows(values_only=True)]
    assert table_rows[0] == header
    assert len(table_rows) - 1 == len(rows)

    with page.expect_download() as gaps_download:
        page.get_by_role("link", name="Als CSV herunterladen (Lücken)").click()
    assert gaps_download.value.suggested_filename.startswith("bericht-luecken-leverkusen-")


def test_core_group_groups_by_month_and_receiver_for_a_period(browse, leverkusen_referrals):
    person = browse()
    page = person.sign_in("core.caritas-leverkusen")
    page.goto(person.url("/berichte/"))
    today = date.today()
    page.get_by_label("Von").fill(today.replace(day=1).isoformat())
    page.get_by_label("Bis").fill(today.isoformat())
    page.get_by_label("Status").uncheck()
    page.get_by_label("empfangende Organisation").check()
    page.get_by_label("Monat").check()
    page.get_by_role("button", name="Bericht anzeigen").click()
    table = page.locator("#report-referrals")
    expect(table.locator("caption")).to_contain_text(
        "nach empfangender Organisation, Monat")
    row = table.locator("tbody tr").filter(has_text="Caritasverband Leverkusen")
    expect(row).to_have_count(1)
    month = row.locator("td").nth(1)
    expect(month).to_contain_text(str(today.year))
    expect(page.get_by_label("Monat")).to_be_checked()
    expect(page.get_by_label("Status")).not_to_be_checked()
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Als CSV herunterladen (Vermittlungen)").click()
    assert csv_download.value.suggested_filename == (
        f"bericht-vermittlungen-leverkusen-{today:%Y-%m}.csv")

    # A period that ends before it begins: the API's message beside the field.
    page.get_by_label("Von").fill(today.isoformat())
    page.get_by_label("Bis").fill((today - timedelta(days=60)).isoformat())
    page.get_by_role("button", name="Bericht anzeigen").click()
    expect(page.locator("#f-from-error")).to_contain_text(
        "Der Beginn des Zeitraums darf nicht nach seinem Ende liegen")
    expect(page.locator("#report-referrals")).to_have_count(0)


def test_the_ministry_chooses_an_alliance_or_all(browse, platform):
    # Offers in both alliances, so that both appear in the gaps report.
    create(platform.as_user("cw.jmd-neuss"), "/api/v1/offers",
           {"title": "Sprachtreff Neuss", "category": "language_course", "capacity": 8})
    create(platform.as_user("cw.awo-leverkusen"), "/api/v1/offers",
           {"title": "Wohnungssuche begleiten", "category": "housing", "capacity": 6})
    person = browse()
    page = person.sign_in("ministry.analyst")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role(
        "link", name="Berichte").click()
    alliance = page.get_by_label("Bündnis")
    expect(alliance).to_have_value("")
    expect(page.locator("#report-gaps caption")).to_contain_text("alle Bündnisse")
    gaps_alliances = set(page.locator("#report-gaps tbody th").all_inner_texts())
    assert {"leverkusen", "rhein-kreis-neuss"} <= gaps_alliances
    person.check_accessibility("reports-ministry")

    alliance.select_option("rhein-kreis-neuss")
    page.get_by_role("button", name="Bericht anzeigen").click()
    expect(page.locator("#report-gaps caption")).to_contain_text("(rhein-kreis-neuss)")
    assert set(page.locator("#report-gaps tbody th").all_inner_texts()) == {"rhein-kreis-neuss"}
    expect(page.get_by_label("Bündnis")).to_have_value("rhein-kreis-neuss")
    with page.expect_download() as download:
        page.get_by_role("link", name="Als CSV herunterladen (Lücken)").click()
    assert download.value.suggested_filename.startswith("bericht-luecken-rhein-kreis-neuss-")

    page.get_by_label("Bündnis").select_option("")
    page.get_by_role("button", name="Bericht anzeigen").click()
    expect(page.locator("#report-gaps caption")).to_contain_text("alle Bündnisse")
    with page.expect_download() as download:
        page.get_by_role("link", name="Als CSV herunterladen (Lücken)").click()
    assert download.value.suggested_filename.startswith("bericht-luecken-alle-buendnisse-")


def test_a_case_worker_has_no_reports(browse):
    person = browse()
    page = person.sign_in("cw.jmd-leverkusen")
    navigation = page.get_by_role("navigation", name="Hauptnavigation")
    expect(navigation.get_by_role("link", name="Angebote")).to_be_visible()
    expect(navigation.get_by_role("link", name="Berichte")).to_have_count(0)
    response = page.goto(person.url("/berichte/"))
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Nicht erlaubt")
    expect(page.locator(".api-message")).to_contain_text("core_group")
    response = page.goto(person.url("/berichte/vermittlungen.csv"))
    assert response.status == 403
