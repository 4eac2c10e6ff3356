"""The limits an uploaded list must keep before intake spends real work on it.

A spreadsheet is an archive of XML: a few kilobytes can unpack to gigabytes (a zip bomb of shared
strings), declare 10⁸ rows that openpyxl would fill in one by one, or carry an entity expansion
(billion laughs). Every limit here is checked on the archive's directory or while streaming, before
or instead of building anything large, and a refusal names the limit and what was found.
Each limit is a setting (``IMPORT_*``); the defaults fit a partner's list of a few thousand people
with room to spare.
"""
from __future__ import annotations

from dataclasses import dataclass

from buendnis_common.errors import DomainError
from buendnis_common.settings import env_int


class TooLarge(DomainError):
    """413: the upload, or what it unpacks to, is larger than intake accepts."""

    status = 413


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int  # the uploaded file
    max_rows: int  # every row after the header, empty ones too
    max_columns: int
    max_field_chars: int
    max_uncompressed_bytes: int  # XLSX: all parts of the archive together
    max_member_bytes: int  # XLSX: any one part
    max_compression_ratio: int  # XLSX: of any part larger than RATIO_FLOOR_BYTES
    max_members: int  # XLSX: parts in the archive
    sync_max_rows: int  # above this, the import runs in the worker (202)

    @classmethod
    def from_env(cls) -> ImportLimits:
        return cls(
            max_bytes=env_int("IMPORT_MAX_BYTES", 5 * 1024 * 1024),
            max_rows=env_int("IMPORT_MAX_ROWS", 20_000),
            max_columns=env_int("IMPORT_MAX_COLUMNS", 100),
            max_field_chars=env_int("IMPORT_MAX_FIELD_CHARS", 2_000),
            max_uncompressed_bytes=env_int("IMPORT_MAX_UNCOMPRESSED_BYTES", 50 * 1024 * 1024),
            max_member_bytes=env_int("IMPORT_MAX_MEMBER_BYTES", 25 * 1024 * 1024),
            max_compression_ratio=env_int("IMPORT_MAX_COMPRESSION_RATIO", 100),
            max_members=env_int("IMPORT_MAX_MEMBERS", 100),
            sync_max_rows=env_int("IMPORT_SYNC_MAX_ROWS", 1_000),
        )


# Small parts may compress extremely well (a styles part of repeated tags) without harm.
RATIO_FLOOR_BYTES = 1024 * 1024
