"""Checking an XLSX archive before openpyxl reads it.

openpyxl trusts the file: it unpacks the shared strings whole, fills in every row between the ones
present up to what the sheet declares, and widens every row to its last cell. So before it runs,
this module reads only the archive's directory (member count, each member's size and compression
ratio, their sum — ``zipfile`` never yields more than a member's declared size, so a lying
directory cannot inflate further) and then streams every XML part once through defusedxml with
document type declarations forbidden (no entity expansion, no external entities), counting the
rows and columns each worksheet declares and contains. Nothing of the content is kept.
"""
from __future__ import annotations

import io
import re
import zipfile
import zlib

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from openpyxl.utils.cell import column_index_from_string, range_boundaries

from buendnis_common.errors import FieldError, Unprocessable
from intake.importer.limits import RATIO_FLOOR_BYTES, ImportLimits, TooLarge

_CELL_COLUMN = re.compile(r"^\$?([A-Za-z]{1,3})")
_XML_SUFFIXES = (".xml", ".rels", ".vml")


def unreadable() -> Unprocessable:
    return Unprocessable("import.xlsx_unreadable",
                         errors={"file": [FieldError("import.not_xlsx_workbook")]})


def too_many_rows(limits: ImportLimits) -> Unprocessable:
    return Unprocessable("import.too_many_rows", field="file", max=limits.max_rows)


def too_many_columns(limits: ImportLimits) -> Unprocessable:
    return Unprocessable("import.too_many_columns", field="file", max=limits.max_columns)


def _refuse(error_type: type, code: str, **params: int) -> Exception:
    return error_type(code, field="file", **params)


def check_workbook(content: bytes, limits: ImportLimits) -> int:
    """Refuse a workbook that would cost too much to read (413 or 422, naming the limit).
    Returns the rows after the header of its largest worksheet, empty rows included."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError):
        raise unreadable() from None
    if len(infos) > limits.max_members:
        raise _refuse(Unprocessable, "import.workbook_too_many_parts", found=len(infos),
                      max=limits.max_members)
    total = 0
    for info in infos:
        if info.file_size > limits.max_member_bytes:
            raise _refuse(TooLarge, "import.workbook_part_too_large", found=info.file_size,
                          max=limits.max_member_bytes)
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise _refuse(Unprocessable, "import.workbook_compression_ratio", found=ratio,
                          max=limits.max_compression_ratio)
        total += info.file_size
    if total > limits.max_uncompressed_bytes:
        raise _refuse(TooLarge, "import.workbook_too_large", found=total,
                      max=limits.max_uncompressed_bytes)
    rows = 0
    try:
        for info in infos:
            if info.filename.lower().endswith(_XML_SUFFIXES):
                with archive.open(info) as part:
                    rows = max(rows, _scan_part(part, limits))
    except DefusedXmlException:
        raise _refuse(Unprocessable, "import.workbook_entities") from None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, ValueError,
            OSError, EOFError, SyntaxError):  # ParseError is a SyntaxError
        raise unreadable() from None
    return rows


def _scan_part(part, limits: ImportLimits) -> int:
    """Stream one XML part, keeping no more of it than the path to the current element; for a
    worksheet, check its declared size, every row's number and every cell's column.
    Returns its rows after the header (0 for other parts)."""
    last_row = 0
    column = 0
    open_elements = []
    for event, element in iterparse(part, events=("start", "end"), forbid_dtd=True):
        if event == "end":
            open_elements.pop()
            if open_elements:
                open_elements[-1].remove(element)
            continue
        open_elements.append(element)
        namespace, _, name = element.tag.rpartition("}")
        if "spreadsheetml" not in namespace:
            continue
        if name == "dimension":
            try:
                _min_col, _min_row, max_col, max_row = range_boundaries(element.get("ref", ""))
            except (ValueError, TypeError):
                continue
            if max_row is not None and max_row - 1 > limits.max_rows:
                raise too_many_rows(limits)
            if max_col is not None and max_col > limits.max_columns:
                raise too_many_columns(limits)
        elif name == "row":
            number = element.get("r")
            last_row = int(number) if number and number.isdigit() else last_row + 1
            if last_row - 1 > limits.max_rows:
                raise too_many_rows(limits)
            column = 0
        elif name == "c":
            match = _CELL_COLUMN.match(element.get("r") or "")
            column = column_index_from_string(match.group(1).upper()) if match else column + 1
            if column > limits.max_columns:
                raise too_many_columns(limits)
    return max(last_row - 1, 0)
