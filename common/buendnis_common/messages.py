"""The API's messages in German and English: one gettext catalogue, looked up by error code.
The same catalogue holds the words for the shared vocabulary's codes (``label.<kind>.<code>``,
see ``buendnis_common.vocabulary``).

Every error the API answers carries a stable dotted code (``participant.age_out_of_range``) and
the values its message uses (``params``); the text a person reads comes from
``translations/<language>/LC_MESSAGES/errors.po``, whose message ids *are* the codes and whose
texts use Python's ``%(name)s`` placeholders (Babel's ``python-format`` check applies, so a
translator who drops a placeholder is told by ``pybabel compile --statistics``).

Why the ``.po`` files are read as they are, not compiled ``.mo`` files: Babel reads a ``.po``
file and writes the ``.mo`` image in memory (``read_po`` → ``write_mo`` → ``Translations``), once
per process. A fresh clone, an editable install and the one image all work without a build step,
and there is no compiled file that can go stale beside its source.

The language is the caller's ``Accept-Language``, matched by werkzeug (``de-DE;q=0.9`` → ``de``);
English where the header is absent or names neither language. Numbers are written the way the
language writes them (20,000 in English, 20.000 in German), by Babel's CLDR data.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from flask import has_request_context, request

log = logging.getLogger(__name__)

LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"
DOMAIN = "errors"
DIRECTORY = Path(__file__).parent / "translations"


def po_path(language: str) -> Path:
    return DIRECTORY / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(language: str) -> Catalog:
    """The catalogue of one language, read from its ``.po`` file."""
    with po_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


@cache
def _translations(language: str) -> Translations:
    image = io.BytesIO()
    write_mo(image, catalogue(language))
    image.seek(0)
    return Translations(image, domain=DOMAIN)


class AnyOf(tuple):
    """A list a message reads as alternatives: "a or b" in English, "a oder b" in German. In a
    body's ``params`` it is a plain list."""

    __slots__ = ()


class Label(str):
    """A code a message shows by its word: ``Label("referral_status", "rejected")`` reads
    „abgelehnt“ in German (``label.<kind>.<code>`` in the catalogue) and "rejected" in English,
    whose messages name codes as the API spells them. In a body's ``params`` it is the code."""

    kind: str

    def __new__(cls, kind: str, code: str) -> Label:
        self = super().__new__(cls, code)
        self.kind = kind
        return self

    def __reduce__(self):
        return (Label, (self.kind, str(self)))


def label(kind: str, code: str | None, language: str | None = None) -> str:
    """The word for a code of the shared vocabulary in that language; the code if none."""
    if code is None:
        return "–"
    key = f"label.{kind}.{code}"
    language = language or request_language()
    for candidate in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        found = _translations(candidate).gettext(key)
        if found != key:
            return found
    return str(code)


_OR = {"en": " or ", "de": " oder "}
_NONE = {"en": "none", "de": "keine"}


def known_codes(language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """Every code with a (non-empty) text in that language's catalogue."""
    return frozenset(str(message.id) for message in catalogue(language)
                     if message.id and message.string)


def request_language() -> str:
    """German or English, by the current request's ``Accept-Language``; English outside one."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    # werkzeug parses the header and orders it by weight; the first language we have wins
    # (de-DE → de). Its best_match would prefer an exact "en;q=0.5" to "de-DE;q=0.8".
    for value, quality in request.accept_languages:
        primary = value.replace("_", "-").split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def _shown(value: Any, language: str) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Label):  # English messages name the code as the API spells it
        return str(value) if language == DEFAULT_LANGUAGE else label(value.kind, value, language)
    if isinstance(value, int):
        return format_decimal(value, locale=language)
    if isinstance(value, (list, tuple, set, frozenset)):
        if not value:
            return _NONE.get(language, _NONE[DEFAULT_LANGUAGE])
        separator = _OR.get(language, _OR[DEFAULT_LANGUAGE]) if isinstance(value, AnyOf) else ", "
        return separator.join(str(_shown(item, language)) for item in value)
    return value


def text(code: str, params: Mapping[str, Any] | None = None, language: str | None = None) -> str:
    """The message for ``code`` in ``language`` (the request's by default), with its params.

    A code the language lacks falls back to English; a code no catalogue knows comes back as
    itself (the catalogue test keeps that from happening for any code raised in the code base)."""
    language = language or request_language()
    for candidate in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        template = _translations(candidate).gettext(code)
        if template != code:
            break
    else:
        log.warning("error code without a text: %s", code)
        return code
    values = {key: _shown(value, candidate) for key, value in (params or {}).items()}
    try:
        return template % values
    except (KeyError, TypeError, ValueError):
        log.warning("error text %s does not fit its params %s", code, sorted(values))
        return template
