"""Languages of the pages (German first, English second) and the words for the API's codes.

Message ids are German: German is the language the pages are written in; the English catalogue
translates them. Content in other languages (a participant's languages, a message written in
Arabic) keeps its own ``lang`` and direction.
"""
from __future__ import annotations

import unicodedata

from babel import Locale, UnknownLocaleError
from flask import Blueprint, current_app, redirect, request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from buendnis_common import vocabulary

from .auth import signed_in

UI_LANGUAGES = {"de": "Deutsch", "en": "English"}
DEFAULT_LANGUAGE = "de"
RTL_LANGUAGES = vocabulary.RTL_LANGUAGES

blp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """German unless the user chose another language of the pages."""
    chosen = session.get("lang")
    return chosen if chosen in UI_LANGUAGES else DEFAULT_LANGUAGE


@blp.post("/sprache")
def choose_language():
    """The language of the pages, kept in the session. CSRF-checked once someone is signed in;
    before that there is no session to protect, and the pages hand out no CSRF token (which
    would make every anonymous page view a session in Redis)."""
    if signed_in():
        current_app.extensions["csrf"].protect()
    chosen = request.form.get("lang", DEFAULT_LANGUAGE)
    session["lang"] = chosen if chosen in UI_LANGUAGES else DEFAULT_LANGUAGE
    target = request.form.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    return redirect(target)


LABELS = {
    "gender": {
        "female": _l("weiblich"),
        "male": _l("männlich"),
        "diverse": _l("divers"),
        "unspecified": _l("keine Angabe"),
    },
    "channel": {
        "sms": _l("SMS"),
        "email": _l("E-Mail"),
        "none": _l("keine Erinnerungen"),
    },
    "qualification": {
        "none": _l("kein Schulabschluss"),
        "primary": _l("Grundschule"),
        "lower_secondary": _l("Sekundarstufe I"),
        "upper_secondary": _l("Sekundarstufe II"),
        "vocational": _l("Berufsabschluss"),
        "higher": _l("Hochschulabschluss"),
        "unknown": _l("unbekannt"),
    },
    # The verbs on the buttons that move a referral to a status.
    "referral_action": {
        "accepted": _l("Annehmen"),
        "rejected": _l("Ablehnen"),
        "cancelled": _l("Zurückziehen"),
        "in-progress": _l("Beginnen"),
        "on-hold": _l("Pausieren"),
        "completed": _l("Abschließen"),
        "failed": _l("Als gescheitert schließen"),
    },
    "notification_kind": {
        "referral.received": _l("Neue Vermittlung erhalten"),
        "referral.accepted": _l("Vermittlung angenommen"),
        "referral.rejected": _l("Vermittlung abgelehnt"),
        "referral.status_changed": _l("Status geändert"),
        "referral.overdue": _l("Antwort überfällig"),
        "referral.message_posted": _l("Neue Nachricht"),
        "appointment.booked": _l("Termin gebucht"),
        "appointment.moved": _l("Termin verschoben"),
        "appointment.cancelled": _l("Termin abgesagt"),
        "appointment.reminder": _l("Terminerinnerung"),
        "reminder.failed": _l("Erinnerung nicht zugestellt"),
        "reminder.unconfirmed": _l("Erinnerung vielleicht nicht angekommen"),
        "answer.confirmed": _l("Termin bestätigt"),
        "answer.cancel_requested": _l("Absage erbeten"),
        "answer.unclear": _l("Unklare Antwort"),
        "answer.sms_stopped": _l("Keine SMS mehr"),
    },
    # The participant's answer to a reminder, on the appointment.
    "participant_response": {
        "confirmed": _l("bestätigt"),
        "cancel_requested": _l("Absage erbeten"),
    },
    "org_type": {
        "ministry": _l("Ministerium"),
        "municipality": _l("Kommune"),
        "jmd": _l("Jugendmigrationsdienst"),
        "ngo": _l("freier Träger"),
        "jobcenter": _l("Jobcenter / Arbeitsagentur"),
        "school": _l("Schule"),
        "chamber": _l("Kammer"),
    },
    # Reminders of an appointment (GET /api/v1/reminders), shown on a referral's page.
    "reminder_status": {
        "scheduled": _l("geplant"),
        "sent": _l("gesendet"),
        "cancelled": _l("storniert"),
        "failed": _l("nicht zugestellt"),
    },
    "reminder_kind": {
        "reminder": _l("Erinnerung"),
        "moved": _l("Hinweis: verschoben"),
        "cancellation": _l("Hinweis: abgesagt"),
    },
    "reminder_recipient": {
        "participant": _l("teilnehmende Person"),
        "case_worker": _l("Fallbearbeitung"),
    },
    "reminder_channel": {
        "sms": _l("SMS"),
        "email": _l("E-Mail"),
        "none": _l("kein Kanal gewählt"),
        "inbox": _l("Eingang auf der Plattform"),
    },
    "report_column": {
        "alliance": _l("Bündnis"),
        "status": _l("Status"),
        "from_org": _l("von"),
        "to_org": _l("an"),
        "need_category": _l("Bedarf"),
        "month": _l("Monat"),
        "count": _l("Anzahl"),
        "median_hours_to_first_answer": _l("Antwortzeit (Median, Stunden)"),
        "acceptance_rate": _l("Annahmequote"),
        "completion_rate": _l("Abschlussquote"),
        "overdue_open": _l("offen und überfällig"),
        "open_needs": _l("offene Bedarfe"),
        "active_offers": _l("aktive Angebote"),
        "capacity": _l("Plätze"),
        "open_referrals": _l("offene Vermittlungen"),
        "stuck_participants": _l("Personen ohne Abschluss nach mehreren Vermittlungen"),
    },
}


def label(kind: str, code: str | None) -> str:
    """The word for a code in the current language; the code itself if none is known. The
    shared vocabulary's kinds (needs, statuses, modes …) come from the shared catalogue, so that
    pages, the API's messages and the notifications name a code alike."""
    if code is None:
        return "–"
    if kind in vocabulary.LABEL_KINDS:
        return vocabulary.label(kind, code, str(get_locale() or DEFAULT_LANGUAGE))
    found = LABELS.get(kind, {}).get(code)
    return str(found) if found is not None else str(code)


_CODES = {
    "need_category": vocabulary.NEED_CATEGORIES, "need_status": vocabulary.NEED_STATUSES,
    "residence_status": vocabulary.RESIDENCE_STATUSES,
    "data_category": vocabulary.DATA_CATEGORIES, "referral_status": vocabulary.REFERRAL_STATUSES,
    "appointment_status": vocabulary.APPOINTMENT_STATUSES, "mode": vocabulary.OFFER_MODES,
}


def choices(kind: str) -> list[tuple[str, str]]:
    if kind in _CODES:
        return [(code, label(kind, code)) for code in _CODES[kind]]
    return [(code, str(text)) for code, text in LABELS[kind].items()]


def language_name(code: str) -> Markup:
    """A language's name in that language, marked with its ``lang`` and direction, followed by
    its name in the language of the page: ``العربية (Arabisch)``."""
    try:
        locale = Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Markup.escape(code)
    own = locale.get_display_name(locale) or code
    in_page = locale.get_display_name(get_locale()) or code
    direction = ' dir="rtl"' if code in RTL_LANGUAGES else ""
    if own == in_page:
        return Markup('<span lang="{}"{}>{}</span>').format(code, Markup(direction), own)
    return Markup('<span lang="{}"{}>{}</span> ({})').format(
        code, Markup(direction), own, in_page
    )


# The languages the alliances' young people and staff most often speak (the seeds: Syria,
# Afghanistan, Iraq, Eritrea, Somalia, Ukraine, Turkey, the Balkans): offered first.
FREQUENT_LANGUAGES = ("de", "ar", "fa", "ps", "ku", "ti", "so", "uk", "ru", "tr", "sq", "am",
                      "en", "fr")


def language_choices() -> list[tuple[str, object]]:
    """ISO 639-1 languages by their name in the page's language, for select lists: two groups,
    the frequently needed ones first, then all others (each language once)."""
    page = get_locale()
    names = {code: name for code, name in page.languages.items() if len(code) == 2}
    frequent = [(code, names[code]) for code in FREQUENT_LANGUAGES if code in names]
    others = sorted(((code, name) for code, name in names.items()
                     if code not in FREQUENT_LANGUAGES), key=lambda pair: pair[1].casefold())
    return [(str(_l("Häufig gebraucht")), frequent), (str(_l("Weitere Sprachen")), others)]


def country_choices() -> list[tuple[str, str]]:
    page = get_locale()
    return sorted(
        ((code, name) for code, name in page.territories.items()
         if len(code) == 2 and code.isalpha() and code not in ("ZZ", "XA", "XB", "EU", "EZ", "UN",
                                                                "QO")),
        key=lambda pair: pair[1].casefold(),
    )


def text_direction(text: str | None) -> str:
    """``rtl`` when the text is mostly in a right-to-left script (Arabic, Farsi…), else ``auto``.

    Written text carries no language tag, so its script decides: the first strong character."""
    for char in text or "":
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return "rtl"
        if direction == "L":
            return "ltr"
    return "auto"
