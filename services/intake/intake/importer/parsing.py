"""Reading the lists partners keep today (CSV from any spreadsheet, or XLSX) into rows."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime

from openpyxl import load_workbook

from buendnis_common.errors import DomainError, FieldError, Unprocessable
from intake.importer.archive import check_workbook, too_many_columns, too_many_rows, unreadable
from intake.importer.limits import ImportLimits, TooLarge

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


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")  # what older German Excel writes


def _delimiter(text: str) -> str:
    """The separator the header row uses most (German lists: ';'). Decided on the header alone:
    csv.Sniffer's regular expressions are costly on crafted input and often guess wrong."""
    end = text.find("\n")
    header = text[:end] if end >= 0 else text
    return max(";,\t", key=header.count)


def _field_too_long(number: int, limits: ImportLimits) -> Unprocessable:
    return Unprocessable("import.field_too_long", field="file", row=number,
                         max=limits.max_field_chars)


def _csv_rows(content: bytes, limits: ImportLimits) -> Iterator[list[str]]:
    text = _decode(content)
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # The csv module's own ceiling (131,072 characters) or a broken quote.
            raise _field_too_long(reader.line_num, limits) from None
        yield row


def _check_size(content: bytes, limits: ImportLimits) -> None:
    if len(content) > limits.max_bytes:
        raise TooLarge("import.file_too_large", field="file", found=len(content),
                       max=limits.max_bytes)


def _kind(filename: str) -> str:
    kind = filename.lower().rpartition(".")[2]
    if kind not in ("csv", "xlsx"):
        raise Unprocessable("import.wrong_file_type",
                            errors={"file": [FieldError("import.not_csv_or_xlsx")]})
    return kind


def count_rows(filename: str, content: bytes, limits: ImportLimits | None = None) -> int:
    """Every check of ``read_rows`` that needs no spreadsheet library, and the rows after the
    header (empty ones too): cheap enough for the request, which decides by it whether the
    import runs there or in the worker."""
    limits = limits or ImportLimits.from_env()
    kind = _kind(filename)
    _check_size(content, limits)
    if kind == "xlsx":
        return check_workbook(content, limits)
    count = -1
    for number, row in enumerate(_csv_rows(content, limits), start=1):
        _check_row(number, row, limits)
        count += 1
    return max(count, 0)


def _check_row(number: int, row: Sequence[object], limits: ImportLimits) -> None:
    if number - 1 > limits.max_rows:
        raise too_many_rows(limits)
    if len(row) > limits.max_columns:
        raise too_many_columns(limits)
    for value in row:
        if isinstance(value, str) and len(value) > limits.max_field_chars:
            raise _field_too_long(number, limits)


def _xlsx_rows(content: bytes, limits: ImportLimits) -> Iterator[tuple]:
    workbook = None
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True,
                                 keep_links=False)
        # Explicit bounds: openpyxl would otherwise fill in rows and cells up to what the sheet
        # declares. One row beyond the limit is read, so that the limit is reported.
        yield from workbook.active.iter_rows(min_row=1, max_row=limits.max_rows + 2,
                                             max_col=limits.max_columns, values_only=True)
    except (DomainError, GeneratorExit):
        raise
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise unreadable() from None
    finally:
        if workbook is not None:
            workbook.close()


def read_rows(filename: str, content: bytes, limits: ImportLimits | None = None,
              ) -> list[tuple[int, dict[str, str | None]]]:
    """(row number as the user sees it, values by column name) for every non-empty row.
    Refuses (413, 422) a file beyond any of ``limits`` before or while reading it."""
    limits = limits or ImportLimits.from_env()
    kind = _kind(filename)
    _check_size(content, limits)
    if kind == "xlsx":
        check_workbook(content, limits)
        raw_rows = _xlsx_rows(content, limits)
    else:
        raw_rows = _csv_rows(content, limits)

    header = next(raw_rows, None)
    if header is None:
        raise Unprocessable("import.file_empty", errors={"file": [FieldError("import.no_header")]})
    _check_row(1, header, limits)
    columns = [_header(name) for name in header]
    missing = {"given_name", "family_name", "birth_date", "residence_status"} - set(columns)
    if missing:
        raise Unprocessable("import.columns_missing", columns=sorted(missing), errors={
            "file": [FieldError("import.column_missing", column=name) for name in sorted(missing)]})
    rows = []
    for number, raw in enumerate(raw_rows, start=2):
        # Every row counts against the limit, empty ones too: 10^8 empty rows cost as much
        # to walk through as full ones.
        _check_row(number, raw, limits)
        values = {name: _text(value) for name, value in zip(columns, raw, strict=False) if name}
        if any(values.values()):
            rows.append((number, values))
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
