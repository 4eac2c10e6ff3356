"""Reading the lists partners keep today (CSV from any spreadsheet, or XLSX) into rows."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

from openpyxl import load_workbook

from buendnis_common.errors import Unprocessable

MAX_ROWS = 20_000

# Column names as the API knows them, and as German lists often head them.
COLUMNS = {
    "given_name": ("vorname",),
    "family_name": ("nachname", "familienname"),
    "birth_date": ("geburtsdatum",),
    "residence_status": ("aufenthaltsstatus",),
    "residence_valid_until": ("aufenthalt_gueltig_bis", "aufenthalt_gültig_bis"),
    "gender": ("geschlecht",),
    "nationality": ("staatsangehoerigkeit", "staatsangehörigkeit"),
    "languages": ("sprachen",),
    "municipality": ("kommune", "wohnort"),
    "phone": ("telefon", "handy"),
    "email": ("e-mail", "e_mail"),
    "preferred_channel": ("kanal",),
    "contact_language": ("kontaktsprache",),
    "needs": ("bedarfe",),
    "eligibility_override_reason": ("begruendung_ausnahme", "begründung_ausnahme"),
}
_ALIASES = {alias: name for name, aliases in COLUMNS.items() for alias in (name, *aliases)}
_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_LIST_SEPARATORS = re.compile(r"[,;|\s]+")


def _header(name: object) -> str | None:
    key = str(name or "").strip().lower().replace(" ", "_")
    return _ALIASES.get(key)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _date(value: str | None) -> str | None:
    if value is None:
        return None
    match = _GERMAN_DATE.match(value)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return value


def _list(value: str | None) -> list[str]:
    return [part for part in _LIST_SEPARATORS.split(value or "") if part]


def read_rows(filename: str, content: bytes) -> list[tuple[int, dict[str, str | None]]]:
    """(row number as the user sees it, values by column name) for every non-empty row."""
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
            raise Unprocessable("The file is not a readable XLSX workbook.",
                                errors={"file": ["Not a readable XLSX workbook."]}) from None
        raw_rows = sheet.iter_rows(values_only=True)
    elif filename.lower().endswith(".csv"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = content.decode("cp1252")  # what older German Excel versions write
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=";,\t")
        except csv.Error:
            dialect = csv.excel
        raw_rows = csv.reader(io.StringIO(text), dialect)
    else:
        raise Unprocessable("Send a .csv or .xlsx file.", errors={"file": ["Not .csv or .xlsx."]})

    header = next(raw_rows, None)
    if header is None:
        raise Unprocessable("The file is empty.", errors={"file": ["No header row."]})
    columns = [_header(name) for name in header]
    missing = {"given_name", "family_name", "birth_date", "residence_status"} - set(columns)
    if missing:
        raise Unprocessable(
            "The header row lacks required columns.",
            errors={"file": [f"Missing column {name}." for name in sorted(missing)]},
        )
    rows = []
    for number, raw in enumerate(raw_rows, start=2):
        values = {name: _text(value) for name, value in zip(columns, raw, strict=False) if name}
        if not any(values.values()):
            continue
        rows.append((number, values))
        if len(rows) > MAX_ROWS:
            raise Unprocessable(f"At most {MAX_ROWS} rows per import; split the list.",
                                errors={"file": [f"More than {MAX_ROWS} rows."]})
    return rows


def to_participant(values: dict[str, str | None]) -> dict:
    """A row as the body of POST /participants would be (validation comes after)."""
    body: dict = {
        name: values.get(name)
        for name in ("given_name", "family_name", "residence_status", "gender", "municipality",
                     "eligibility_override_reason")
        if values.get(name) is not None
    }
    for name in ("birth_date", "residence_valid_until"):
        if values.get(name) is not None:
            body[name] = _date(values[name])
    if values.get("nationality"):
        body["nationality"] = values["nationality"].upper()
    if values.get("languages"):
        body["languages"] = [code.lower() for code in _list(values["languages"])]
    contact = {
        "phone": values.get("phone"),
        "email": values.get("email"),
        "preferred_channel": values.get("preferred_channel"),
        "language": values.get("contact_language"),
    }
    if any(contact.values()):
        body["contact"] = {key: value for key, value in contact.items() if value is not None}
    if values.get("needs"):
        body["needs"] = [{"category": category} for category in _list(values["needs"])]
    return body


# Where a field of the body came from in the file, so that errors name the user's column.
FIELD_TO_COLUMN = {
    "contact.phone": "phone", "contact.email": "email",
    "contact.preferred_channel": "preferred_channel", "contact.language": "contact_language",
}
