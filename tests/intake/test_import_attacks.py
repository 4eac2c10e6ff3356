"""Crafted lists against the import: each attack is refused fast with 413 or 422 naming the
limit, and intake keeps answering. Long lists run in the worker, visible only to their owner.

The spreadsheets are built here, part by part, as an attacker would: a 1 GB shared-strings part
compressed a thousandfold, a sheet that declares or numbers 10⁸ rows, 20,001 empty rows, a
billion-laughs entity tree. Without the checks before openpyxl each of them would hold an intake
worker for minutes or exhaust its memory.
"""
from __future__ import annotations

import io
import time
import uuid
import zipfile

import pytest

from tests.intake.conftest import adult_birth_date, sql

pytestmark = pytest.mark.platform

GOOD = adult_birth_date(21)
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
HEADER = ["Vorname", "Nachname", "Geburtsdatum", "Aufenthaltsstatus"]
QUICK_SECONDS = 5  # far below what reading any of these files would take


def _parts(sheet_xml: str, strings_xml: str | None) -> dict[str, str]:
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName='
        '"/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sharedStrings+xml"/></Types>')
    parts = {
        "[Content_Types].xml": content_types,
        "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/'
                       'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets><sheet name="Liste" '
                           'sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/worksheet" '
            f'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{REL}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    if strings_xml is not None:
        parts["xl/sharedStrings.xml"] = strings_xml
    return parts


def workbook(sheet_xml: str, strings_xml: str | None = None, *, big_strings=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _parts(sheet_xml, strings_xml or strings()).items():
            if name == "xl/sharedStrings.xml" and big_strings:
                with archive.open(name, "w", force_zip64=True) as part:
                    big_strings(part)
            else:
                archive.writestr(name, text)
    return buffer.getvalue()


def strings(extra: str = "") -> str:
    items = "".join(f"<si><t>{name}</t></si>" for name in HEADER)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">{items}{extra}</sst>'


def sheet(rows: str, dimension: str | None = None) -> str:
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    header = "".join(f'<c r="{"ABCD"[i]}1" t="s"><v>{i}</v></c>' for i in range(4))
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">{declared}'
            f'<sheetData><row r="1">{header}</row>{rows}</sheetData></worksheet>')


def shared_strings_bomb(megabytes: int):
    """A shared-strings part of ``megabytes`` MB of one letter: deflate packs it ~1000:1."""
    def write(part) -> None:
        part.write(strings()[:-len("</sst>")].encode())
        chunk = b"<si><t>" + b"A" * 1_000_000 + b"</t></si>"
        for _ in range(megabytes):
            part.write(chunk)
        part.write(b"</sst>")
    return write


def billion_laughs() -> str:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    doctype = f'<!DOCTYPE sst [<!ENTITY lol0 "lol">{entities}]>'
    return strings().replace("<sst", doctype + "<sst", 1).replace("<t>Vorname</t>",
                                                                  "<t>&lol9;</t>")


def xlsx(content: bytes) -> dict:
    return {"file": ("liste.xlsx", io.BytesIO(content),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}


def csv(content: bytes) -> dict:
    return {"file": ("liste.csv", io.BytesIO(content), "text/csv")}


CSV_HEADER = b"Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus\n"

ATTACKS = {
    # name: (build the upload, status, the message's start)
    "1 GB of shared strings": (
        lambda: xlsx(workbook(sheet(""), big_strings=shared_strings_bomb(1000))), 413,
        "A part of the workbook unpacks to 1,000,"),
    "20 MB of shared strings compressed 1000:1": (
        lambda: xlsx(workbook(sheet(""), big_strings=shared_strings_bomb(20))), 422,
        "A part of the workbook is compressed"),
    "a sheet declaring 10^8 rows": (
        lambda: xlsx(workbook(sheet('<row r="2"><c r="A2" t="s"><v>0</v></c></row>',
                                    dimension="A1:D100000000"))), 422,
        "The file has more than 20,000 rows (empty rows count too)"),
    "a row numbered 10^8": (
        lambda: xlsx(workbook(sheet('<row r="100000000"><c r="A100000000" t="s"><v>0</v></c>'
                                    '</row>'))), 422,
        "The file has more than 20,000 rows (empty rows count too)"),
    "20,001 empty rows": (
        lambda: xlsx(workbook(sheet("<row/>" * 20_001))), 422,
        "The file has more than 20,000 rows (empty rows count too)"),
    "a cell in the last of 16,384 columns": (
        lambda: xlsx(workbook(sheet('<row r="2"><c r="XFD2" t="s"><v>0</v></c></row>'))), 422,
        "The file has more than 100 columns."),
    "billion laughs": (
        lambda: xlsx(workbook(sheet(""), billion_laughs())), 422,
        "The workbook contains a document type declaration or entities"),
    "too many parts": (
        lambda: xlsx(_many_parts()), 422, "The workbook has 206 parts; at most 100"),
    "a CSV field of 3,000 characters": (
        lambda: csv(CSV_HEADER + b"Hiba;" + b"x" * 3000 + b";01.01.2000;duldung\n"), 422,
        "Row 2 has a field of more than 2,000 characters."),
    "a CSV quote never closed": (
        lambda: csv(CSV_HEADER + b'Hiba;"' + b"x" * 2_000_000), 422,
        "Row 2 has a field of more than 2,000 characters."),
    "20,001 empty CSV rows": (
        lambda: csv(CSV_HEADER + b"\n" * 20_001), 422,
        "The file has more than 20,000 rows (empty rows count too)"),
    "a CSV of 6 MB": (
        lambda: csv(CSV_HEADER + (b"Hiba;Yousef;01.01.2000;duldung" + b" " * 170 + b"\n")
                    * 30_000), 413, "The file has 6,"),
}


def _many_parts() -> bytes:
    buffer = io.BytesIO(workbook(sheet("")))
    with zipfile.ZipFile(buffer, "a") as archive:
        for number in range(200):
            archive.writestr(f"xl/media/extra{number}.xml", "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_crafted_list_is_refused_quickly_and_intake_stays_up(jmd, attack):
    build, status, message = ATTACKS[attack]
    files = build()
    started = time.monotonic()
    response = jmd.post("/api/v1/participants/import", files=files, timeout=60)
    elapsed = time.monotonic() - started
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["code"] == status and body["message"].startswith(message), body
    assert body["errors"]["file"]
    assert elapsed < QUICK_SECONDS, f"{attack}: {elapsed:.1f} s"
    # Intake still answers, at once, and imports a good list.
    marker = uuid.uuid4().hex[:6]
    after = jmd.post("/api/v1/participants/import", files=csv(
        CSV_HEADER + f"Hiba;After{marker};{GOOD};duldung\n".encode()), timeout=10)
    assert after.status_code == 201, after.text


def test_a_well_formed_workbook_built_the_same_way_is_imported(jmd):
    """The crafted parts are a real workbook: the refusals above are for the attack, not for
    the way the file is built."""
    marker = uuid.uuid4().hex[:6]
    extra = f"<si><t>Hiba</t></si><si><t>Built{marker}</t></si><si><t>{GOOD}</t></si>" \
            "<si><t>duldung</t></si>"
    row = "".join(f'<c r="{"ABCD"[i]}2" t="s"><v>{4 + i}</v></c>' for i in range(4))
    content = workbook(sheet(f'<row r="2">{row}</row>', dimension="A1:D2"), strings(extra))
    response = jmd.post("/api/v1/participants/import", files=xlsx(content))
    assert response.status_code == 201, response.text
    assert [row["row"] for row in response.json()["imported"]] == [2]


def long_list(marker: str, count: int, bad_row: int | None = None) -> bytes:
    lines = [CSV_HEADER.decode().strip()]
    for number in range(count):
        birth = "31.02.2003" if number == bad_row else GOOD
        lines.append(f"Person{number};Long{marker};{birth};duldung")
    return "\n".join(lines).encode()


def wait_for(client, location: str, seconds: float = 120) -> tuple[dict, set[str]]:
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get(location)
        assert response.status_code == 200, response.text
        state = response.json()
        seen.add(state["status"])
        assert 0 <= state["rows_done"] <= max(state["rows_total"], 1)
        if state["status"] in ("done", "failed"):
            return state, seen
        time.sleep(0.2)
    raise AssertionError(f"the import did not finish: {state}")


def test_a_long_list_is_imported_by_the_worker_with_progress_for_its_organisation_only(
        platform, jmd, caritas, meerbusch):
    marker = uuid.uuid4().hex[:6]
    response = jmd.post("/api/v1/participants/import", files=csv(long_list(marker, 1_500)),
                        data={"mode": "valid_rows"})
    assert response.status_code == 202, response.text
    queued = response.json()
    location = response.headers["Location"]
    assert location == f"/api/v1/participants/imports/{queued['id']}"
    assert queued["status"] == "queued" and queued["rows_total"] == 1_500
    state, seen = wait_for(jmd, location)
    assert state["status"] == "done", state
    assert seen <= {"queued", "checking", "importing", "done"}
    assert state["rows_done"] == state["rows_total"] == 1_500
    report = state["report"]
    assert report["rows"] == 1_500 and report["errors"] == []
    assert [row["row"] for row in report["imported"]][:3] == [2, 3, 4]
    assert len(report["imported"]) == 1_500
    listed = jmd.get("/api/v1/participants", params={"q": f"long{marker}", "page_size": 100})
    assert len(listed.json()) == 100
    # The file is deleted once processed; the audit names the case worker who imported.
    assert sql(platform, "intake", "SELECT COUNT(*) FROM participant_imports "
               "WHERE content IS NOT NULL") == [(0,)]
    actors = sql(platform, "intake", "SELECT DISTINCT actor FROM audit_log WHERE action = "
                 "'participant.import' AND participant_id IN (SELECT id FROM participants "
                 "WHERE family_name = :f)", f=f"Long{marker}")
    assert actors == [("cw.jmd-leverkusen",)]
    # Another organisation, in the same alliance or another, does not see the import.
    for other in (caritas, meerbusch):
        refused = other.get(location)
        assert refused.status_code == 404 and refused.json()["message"] == "No such import."
    assert jmd.get(f"/api/v1/participants/imports/{uuid.uuid4()}").status_code == 404


def test_a_long_list_with_an_error_imports_nothing_and_reports_the_row(jmd):
    marker = uuid.uuid4().hex[:6]
    response = jmd.post("/api/v1/participants/import",
                        files=csv(long_list(marker, 1_200, bad_row=700)))
    assert response.status_code == 202, response.text
    state, _seen = wait_for(jmd, response.headers["Location"])
    assert state["status"] == "failed"
    assert state["message"].startswith("Nothing was imported: 1 of 1,200 rows have errors.")
    assert state["errors"]["rows"] == [{"row": 702, "field": "birth_date",
                                        "code": "field.date.invalid",
                                        "message": "Not a valid date.", "params": {}}]
    assert jmd.get("/api/v1/participants", params={"q": f"long{marker}"}).json() == []


def test_a_file_no_worker_finished_is_deleted_after_a_day_and_old_reports_after_30_days(
        platform, monkeypatch):
    from datetime import timedelta

    from buendnis_common.db import utcnow
    from buendnis_common.settings import ServiceSettings
    from intake.app import create_app
    from intake.importer.models import ParticipantImport
    from intake.importer.service import purge

    for key, value in platform.env.items():
        monkeypatch.setenv(key, value)
    runtime = create_app(ServiceSettings.from_env("intake")).extensions["buendnis"]
    now = utcnow()

    def stored(status: str, updated: timedelta, finished: timedelta | None) -> uuid.UUID:
        record = ParticipantImport(
            id=uuid.uuid4(), owner_org="jmd-leverkusen", created_by="cw.jmd-leverkusen",
            kind="csv", mode="valid_rows", status=status, rows_total=2_000, rows_done=0,
            attempts=1, content=b"Vorname;Nachname\nHiba;Yousef\n" if finished is None else None,
            created_at=now - updated, updated_at=now - updated,
            finished_at=None if finished is None else now - finished)
        with runtime.db.transaction() as session:
            session.add(record)
        return record.id

    try:
        lost = stored("checking", timedelta(days=2), None)
        running = stored("checking", timedelta(minutes=5), None)
        old = stored("done", timedelta(days=31), timedelta(days=31))
        recent = stored("done", timedelta(days=3), timedelta(days=3))
        purge(runtime=runtime)
        with runtime.db.transaction() as session:
            left = {record.id: record for record in session.query(ParticipantImport).filter(
                ParticipantImport.id.in_([lost, running, old, recent]))}
        assert left[lost].status == "failed" and left[lost].content is None
        assert left[running].status == "checking" and left[running].content is not None
        assert old not in left and recent in left
    finally:
        runtime.db.dispose()
