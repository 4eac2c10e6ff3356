"""The login pages: Jinja templates in `templates/` (autoescaped, self-contained: no scripts,
images or external assets), their German and English texts in `messages.json`, Keycloak's
security headers, and the choice of language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Response, render_template

LOCALES = ("de", "en")
DEFAULT_LOCALE = "en"  # Keycloak's default locale
TEXT: dict[str, dict[str, str]] = json.loads(
    Path(__file__).with_name("messages.json").read_text(encoding="utf-8"))
HEADERS = {
    "Content-Type": "text/html;charset=utf-8",
    "Cache-Control": "no-store, must-revalidate, max-age=0",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "none",
}


def pick_locale(ui_locales: str | None, accept_language: str | None) -> str:
    """The first of `ui_locales`, else of Accept-Language, that the pages speak."""
    for source in (ui_locales or "", accept_language or ""):
        for item in source.replace(",", " ").split():
            tag = item.split(";", 1)[0].strip().lower().split("-", 1)[0]
            if tag in LOCALES:
                return tag
    return DEFAULT_LOCALE


def page(template: str, locale: str, title: str, status: int = 200, **context: Any) -> Response:
    """A page in `locale`, with the development banner in the other language too."""
    other = "de" if locale == "en" else "en"
    html = render_template(template, locale=locale, other=other, t=TEXT[locale],
                           other_banner=TEXT[other]["banner"], title=TEXT[locale][title],
                           **context)
    return Response(html, status=status, headers=HEADERS)


def error(locale: str, message: str, status: int = 400) -> Response:
    return page("message.html", locale, "error_title", status, message=message)
