"""The pages are written in German; the English catalogue must translate every text of them,
and the compiled catalogue the server loads must be the one in the .po file."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "web"
PACKAGE = WEB / "web"
CATALOGUE = PACKAGE / "translations" / "en" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def german_texts() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])  # plural: singular id
    return found


def test_pages_have_german_texts_to_translate():
    texts = german_texts()
    assert "Teilnehmende" in texts and "Abmelden" in texts
    assert len(texts) > 100


def test_every_german_text_has_an_english_translation():
    with open(CATALOGUE / "messages.po", "rb") as handle:
        catalogue = read_po(handle)
    def translated(text: str) -> bool:
        entry = catalogue.get(text)
        if entry is None or entry.fuzzy:
            return False
        forms = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
        return all(forms)

    missing = sorted(text for text in german_texts() if not translated(text))
    assert not missing, "untranslated (run `make translations`, then translate):\n" + "\n".join(
        missing
    )


def _entries(messages) -> dict:
    """{id: translation}, plural forms as tuples, the header left out."""
    def tupled(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {tupled(m.id): tupled(m.string) for m in messages if m.id and not m.fuzzy}


def test_compiled_catalogue_matches_the_po_file():
    with open(CATALOGUE / "messages.po", "rb") as handle:
        source = _entries(read_po(handle))
    with open(CATALOGUE / "messages.mo", "rb") as handle:
        compiled = _entries(read_mo(handle))
    assert compiled == source, "messages.mo is stale: run `make translations`"
