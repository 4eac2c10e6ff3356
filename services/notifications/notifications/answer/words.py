"""What a participant's SMS reply means: confirm, ask to cancel, stop SMS, start them again, or
something else. The words of German, English and the reminder languages; the digits 1 and 2
always (also as Arabic-Indic or Persian digits)."""
from __future__ import annotations

import unicodedata

CONFIRM = "confirmed"
CANCEL = "cancel_requested"
STOP = "stop"
START = "start"
UNCLEAR = "unclear"

WORDS: dict[str, frozenset[str]] = {
    CONFIRM: frozenset({
        "1", "ja", "j", "yes", "y", "ok", "okay",  # de, en
        "نعم",  # ar
        "بله", "آره", "بلی",  # fa
        "так",  # uk
        "evet",  # tr
        "да",  # ru
    }),
    CANCEL: frozenset({
        "2", "nein", "n", "no",  # de, en
        "لا",  # ar
        "نه", "خیر",  # fa
        "ні",  # uk
        "hayır", "hayir",  # tr
        "нет",  # ru
    }),
    # Twilio's opt-out and opt-in keywords (STOP, UNSUBSCRIBE …) and German's STOPP.
    STOP: frozenset({"stop", "stopp", "unsubscribe", "stopall", "end", "quit", "стоп"}),
    START: frozenset({"start", "unstop"}),
}


def _normal(body: str) -> str:
    text = unicodedata.normalize("NFKC", body).strip().casefold()
    text = text.strip(" \t\r\n.!?,;:-–—\"'«»„“”()[]\u200f\u200e")
    # Arabic-Indic and Persian digits are digits too: "۱" is 1.
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


def meaning(body: str) -> str:
    text = _normal(body or "")
    for meaning_, words in WORDS.items():
        if text in words:
            return meaning_
    return UNCLEAR
