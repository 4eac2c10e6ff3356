"""Importing the lists partners keep, and erasing participants nobody has worked with for years."""
from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

import pytest
from openpyxl import Workbook

from buendnis_common.db import utcnow
from buendnis_common.settings import ServiceSettings
from tests.intake.conftest import adult_birth_date, sql

pytestmark = pytest.mark.platform

GOOD = adult_birth_date(21)


def csv_file(rows: list[str], header: str) -> dict:
    content = "\n".join([header, *rows]).encode("utf-8-sig")
    return {"file": ("liste.csv", io.BytesIO(content), "text/csv")}


def test_a_german_csv_list_is_imported_with_a_report(jmd):
    marker = uuid.uuid4().hex[:6]
    files = csv_file(
        [f"Hiba;Import{marker};03.05.{GOOD[:4]};duldung;ar, de;+4915112345678;language_course",
         f"Omid;Import{marker};{GOOD};aufenthaltsgestattung;fa;;counselling|housing"],
        header="Vorname;Nachname;Geburtsdatum;Aufenthaltsstatus;Sprachen;Telefon;Bedarfe",
    )
    response = jmd.post("/api/v1/participants/import", files=files)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["rows"] == 2 and report["errors"] == []
    assert [row["row"] for row in report["imported"]] == [2, 3]
    listed = jmd.get("/api/v1/participants", params={"q": f"import{marker}"}).json()
    assert {p["given_name"] for p in listed} == {"Hiba", "Omid"}
    hiba = next(p for p in listed if p["given_name"] == "Hiba")
    assert hiba["languages"] == ["ar", "de"] and hiba["contact"]["phone"] == "+4915112345678"
    omid = next(p for p in listed if p["given_name"] == "Omid")
    assert sorted(n["category"] for n in omid["needs"]) == ["counselling", "housing"]


def test_all_or_nothing_refuses_a_list_with_errors_and_names_row_and_column(jmd):
    marker = uuid.uuid4().hex[:6]
    files = csv_file(
        [f"Ok;Bad{marker};{GOOD};duldung;", f"Broken;Bad{marker};31.02.2003;visa;0176"],
        header="given_name,family_name,birth_date,residence_status,phone".replace(",", ";"),
    )
    response = jmd.post("/api/v1/participants/import", files=files)
    assert response.status_code == 422
    errors = response.json()["errors"]["rows"]
    assert {(e["row"], e["field"]) for e in errors} == {
        (3, "birth_date"), (3, "residence_status"), (3, "phone")}
    assert jmd.get("/api/v1/participants", params={"q": f"bad{marker}"}).json() == []


def test_valid_rows_mode_imports_what_it_can(jmd):
    marker = uuid.uuid4().hex[:6]
    files = csv_file([f"Ok;Half{marker};{GOOD};duldung", f"No;Half{marker};;duldung"],
                     header="given_name;family_name;birth_date;residence_status")
    response = jmd.post("/api/v1/participants/import", files=files,
                        data={"mode": "valid_rows"})
    assert response.status_code == 201
    report = response.json()
    assert [r["row"] for r in report["imported"]] == [2]
    assert report["errors"] == [{"row": 3, "field": "birth_date", "code": "field.required",
                                 "message": "Missing data for required field.", "params": {}}]
    assert len(jmd.get("/api/v1/participants", params={"q": f"half{marker}"}).json()) == 1


def test_an_xlsx_list_is_imported(jmd):
    marker = uuid.uuid4().hex[:6]
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Vorname", "Nachname", "Geburtsdatum", "Aufenthaltsstatus",
                  "Staatsangehörigkeit"])
    sheet.append(["Dilan", f"Xlsx{marker}", date.fromisoformat(GOOD), "duldung", "iq"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    response = jmd.post("/api/v1/participants/import", files={
        "file": ("liste.xlsx", buffer,
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
    assert response.status_code == 201, response.text
    (person,) = jmd.get("/api/v1/participants", params={"q": f"xlsx{marker}"}).json()
    assert person["nationality"] == "IQ" and person["birth_date"] == GOOD


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [("liste.txt", b"a;b", "Send a .csv or .xlsx file."),
     ("liste.csv", b"", "The file is empty."),
     ("liste.csv", b"vorname;nachname\nA;B", "The header row lacks required columns."),
     ("liste.xlsx", b"not a workbook", "The file is not a readable XLSX workbook.")],
)
def test_unreadable_files_are_refused_clearly(jmd, filename, content, message):
    response = jmd.post("/api/v1/participants/import",
                        files={"file": (filename, io.BytesIO(content), "text/plain")})
    assert response.status_code == 422
    assert response.json()["message"] == message


def test_participants_without_activity_for_the_retention_period_are_erased(platform, jmd,
                                                                           registered, monkeypatch):
    from intake.app import create_app
    from intake.participant.handlers import erase_inactive

    fresh = jmd.post("/api/v1/participants", json={
        "given_name": "Recent", "family_name": "Person", "birth_date": GOOD,
        "residence_status": "duldung"}).json()
    long_ago = utcnow() - timedelta(days=37 * 31)
    sql(platform, "intake", "UPDATE participants SET last_activity_at = :t WHERE pseudonym = :p",
        t=long_ago, p=registered["pseudonym"])
    for key, value in platform.env.items():
        if key.startswith(("INTAKE_", "REDIS_", "IDP_")):
            monkeypatch.setenv(key, value)
    runtime = create_app(ServiceSettings.from_env("intake")).extensions["buendnis"]
    try:
        assert erase_inactive(runtime=runtime) >= 1
    finally:
        runtime.db.dispose()
    assert jmd.get(f"/api/v1/participants/{registered['id']}").status_code == 404
    assert jmd.get(f"/api/v1/participants/{fresh['id']}").status_code == 200
    actors = sql(platform, "intake", "SELECT actor FROM audit_log WHERE action = "
                 "'participant.erase' AND actor = 'retention'")
    assert actors
