"""Messages to the participant in their language, with the appointment's time in Europe/Berlin
formatted by Babel for that language.

Right-to-left languages (Arabic, Farsi): every line starts with a RIGHT-TO-LEFT MARK and every
inserted value (a Latin organisation name, a date with Latin digits, the person's name) is
wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE, so that a phone or mail program lays
the sentence out right to left without reordering the inserted parts; the HTML part says
``dir="rtl"`` and wraps values in ``<bdi>``.
"""
from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from babel.dates import format_datetime, get_date_format, get_datetime_format, get_time_format

from buendnis_common.timeutil import BERLIN
from notifications.messages.texts import DEFAULT_LANGUAGE, RTL_LANGUAGES, TEXTS

RLM = "\u200f"
FSI = "\u2068"
PDI = "\u2069"


def language_for(preferred: str | None, spoken: list[str] | None = None) -> str:
    """The participant's chosen language if we write it, else the first language they speak
    that we write, else German."""
    for code in [preferred, *(spoken or [])]:
        if code and code.lower() in TEXTS:
            return code.lower()
    return DEFAULT_LANGUAGE


@lru_cache(maxsize=4096)
def format_when(moment: datetime, language: str) -> str:
    """Weekday, date and time in Europe/Berlin, as the language writes them (remembered: the
    reminders of a burst share a few start times and seven languages)."""
    pattern = get_datetime_format("long", locale=language).format(
        get_time_format("short", locale=language).pattern,
        get_date_format("full", locale=language).pattern,
    )
    return format_datetime(moment, pattern, tzinfo=BERLIN, locale=language)


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


@dataclass(frozen=True)
class Rendered:
    language: str
    rtl: bool
    subject: str
    text: str
    html: str
    sms: str
    summary: str


def render(kind: str, *, language: str, name: str | None, org_name: str, start: datetime,
           mode: str | None, link: str | None = None, answerable: bool = False) -> Rendered:
    """``kind``: ``reminder``, ``moved`` or ``cancellation``. ``link``: the e-mail's link to
    answer (confirm or ask to cancel); ``answerable``: the SMS says how to answer by reply."""
    language = language if language in TEXTS else DEFAULT_LANGUAGE
    texts = TEXTS[language]
    rtl = language in RTL_LANGUAGES
    values = {
        "name": name or "",
        "org": org_name,
        "when": format_when(start, language),
        "mode": texts.get(mode or "", texts["in_person"]),
        "link": link or "",
    }

    def plain(template: str) -> str:
        isolated = {
            key: f"{FSI}{value}{PDI}" if rtl or _has_rtl(value) else value
            for key, value in values.items()
        }
        filled = template.format(**isolated)
        if rtl:
            filled = "\n".join(f"{RLM}{line}" for line in filled.split("\n"))
        return filled

    def marked_up(template: str) -> str:
        escaped = {key: f"<bdi>{html.escape(value)}</bdi>" for key, value in values.items()}
        if link:
            escaped["link"] = (f'<a href="{html.escape(link, quote=True)}" dir="ltr">'
                               f"{html.escape(link)}</a>")
        return html.escape(template).replace("\n", "<br>\n").format(**escaped)

    greeting = texts["greeting"] if name else ""
    body_key, footer = f"{kind}_body", texts["footer"]
    answer = plain(texts["answer_link"]) if link else ""
    text = "\n\n".join(part for part in (
        plain(greeting) if greeting else "", plain(texts[body_key]), answer, plain(footer))
        if part)
    direction = "rtl" if rtl else "ltr"
    paragraphs = [marked_up(greeting)] if greeting else []
    paragraphs += [marked_up(texts[body_key])]
    if link:
        paragraphs.append(marked_up(texts["answer_link"]))
    paragraphs.append(f"<small>{html.escape(footer)}</small>")
    body_html = (
        f'<!DOCTYPE html>\n<html lang="{language}" dir="{direction}">\n'
        '<head><meta charset="utf-8"></head>\n'
        f'<body dir="{direction}" style="text-align: {"right" if rtl else "left"}">\n'
        + "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
        + "\n</body>\n</html>\n"
    )
    return Rendered(
        language=language,
        rtl=rtl,
        subject=plain(texts[f"{kind}_subject"]),
        text=text,
        html=body_html,
        sms=plain(texts[f"{kind}_sms"] + (" " + texts["sms_reply_hint"] if answerable else "")),
        summary=texts["summary"].format(org=org_name),
    )
