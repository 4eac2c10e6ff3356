"""The API's messages in the language of the page.

The services answer in English: marshmallow's texts (through webargs) ("Missing data for required
field.", "Length must be between 1 and 200.") and their own ("Say why the referral is rejected.").
``localize`` recognises each message by a regular expression over the English text and gives the
page's text instead: a German message id (the pages' language) through Flask-Babel, with the
parts of the message that vary (lengths, codes, organisations, counts) as its parameters. The
English catalogue translates those ids back into English for English pages.

A message that is not in the table comes back unchanged: nothing the API said is ever lost.
Codes listed as allowed values ("Must be one of: …", "You can set: …") stay codes; a single status
named in a sentence is shown by its label.

Outside a request (no Flask-Babel context) the German ids themselves are returned.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from flask_babel import format_number, ngettext
from flask_babel import gettext as _

from . import i18n

Render = Callable[[Mapping[str, str]], str]
Rule = tuple[re.Pattern[str], Render]

# Fields whose value is a list: marshmallow's Length counts their entries, not characters.
LIST_FIELDS = frozenset({"languages", "needs", "data_categories", "eligible_residence_statuses"})


def _re(pattern: str, render: Render) -> Rule:
    """A rule: ``pattern`` (a regular expression) must match the whole English message."""
    return re.compile(rf"^(?:{pattern})$", re.DOTALL), render


def _text(english: str, render: Render) -> Rule:
    """A rule for a message without variable parts: its literal English text."""
    return _re(re.escape(english), render)


def _referral_status(code: str) -> str:
    return i18n.label("referral_status", code)


def _appointment_status(code: str) -> str:
    return i18n.label("appointment_status", code)


def _need(code: str) -> str:
    return i18n.label("need_category", code)


def _numbers(m: Mapping[str, str]) -> dict[str, str]:
    """Counts as the API writes them (20,000) in the page's language (20.000 in German)."""
    formatted = {}
    for key, value in m.items():
        try:
            formatted[key] = format_number(int(value.replace(",", "")))
        except (RuntimeError, KeyError, AttributeError):  # outside a request
            formatted[key] = value
    return formatted


def _you_can_set(allowed: str | None) -> str:
    """The second sentence of the referral service's status refusals; codes stay codes."""
    if allowed is None:
        return ""
    return " " + _("Sie können jetzt setzen: %(allowed)s.", allowed=allowed)


def _cannot_become(m: Mapping[str, str]) -> str:
    first = _("Eine Vermittlung mit dem Status „%(current)s“ kann nicht in den Status "
              "„%(wanted)s“ wechseln.",
              current=_referral_status(m["current"]), wanted=_referral_status(m["wanted"]))
    if m.get("allowed") is None:
        return first + " " + _("Sie können jetzt keinen Status setzen.")
    return first + _you_can_set(m["allowed"])


def _only_side_can_set(m: Mapping[str, str]) -> str:
    status = _referral_status(m["status"])
    if m["who"] == "receiver":
        first = _("Nur die empfangende Organisation kann den Status „%(status)s“ setzen.",
                  status=status)
    elif m["who"] == "sender":
        first = _("Nur die sendende Organisation kann den Status „%(status)s“ setzen.",
                  status=status)
    else:
        first = _("Den Status „%(status)s“ können nur setzen: %(who)s.", status=status,
                  who=m["who"])
    return first + _you_can_set(m.get("allowed"))


# What ``require_case_role(principal, what)`` refuses, in the referrals service.
_CASE_ROLE_ACTIONS: dict[str, Callable[[], str]] = {
    "work on referrals": lambda: _(
        "Nur Fallbearbeitende und Koordinierende können mit Vermittlungen arbeiten."),
    "refer participants": lambda: _(
        "Nur Fallbearbeitende und Koordinierende können Teilnehmende vermitteln."),
    "add offers to the catalogue": lambda: _(
        "Nur Fallbearbeitende und Koordinierende können Angebote in den Katalog aufnehmen."),
    "change offers": lambda: _(
        "Nur Fallbearbeitende und Koordinierende können Angebote ändern."),
    "work on appointments": lambda: _(
        "Nur Fallbearbeitende und Koordinierende können mit Terminen arbeiten."),
}


def _case_role(m: Mapping[str, str]) -> str:
    known = _CASE_ROLE_ACTIONS.get(m["what"])
    if known is not None:
        return known()
    return _("Nur Fallbearbeitende und Koordinierende dürfen das (%(what)s).", what=m["what"])


def _role_needed(m: Mapping[str, str]) -> str:
    needed = ", ".join(m["needed"].split(" or "))
    yours = _("keine") if m["yours"] == "none" else m["yours"]
    return _("Dafür braucht es eine dieser Rollen: %(needed)s. Ihre Rollen: %(yours)s.",
             needed=needed, yours=yours)


def _count(m: Mapping[str, str], key: str) -> int:
    return int(m[key])


# Marshmallow's Length on a list field (languages, needs: max; data_categories: min): entries,
# not characters.
LIST_RULES: tuple[Rule, ...] = (
    _re(r"Shorter than minimum length (?P<min>\d+)\.",
        lambda m: ngettext("Bitte mindestens %(num)s Eintrag angeben.",
                           "Bitte mindestens %(num)s Einträge angeben.", _count(m, "min"))),
    _re(r"Longer than maximum length (?P<max>\d+)\.",
        lambda m: ngettext("Bitte höchstens %(num)s Eintrag angeben.",
                           "Bitte höchstens %(num)s Einträge angeben.", _count(m, "max"))),
)

RULES: tuple[Rule, ...] = (
    # --- marshmallow: fields' default error messages (marshmallow/fields.py) ---------------
    _text("Missing data for required field.", lambda m: _("Diese Angabe fehlt.")),
    _text("Field may not be null.", lambda m: _("Dieses Feld darf nicht leer sein.")),
    _text("Not a valid list.", lambda m: _("Keine gültige Liste.")),
    _text("Not a valid string.", lambda m: _("Kein gültiger Text.")),
    _text("Not a valid UUID.", lambda m: _("Keine gültige Kennung (UUID).")),
    _text("Not a valid integer.", lambda m: _("Keine gültige ganze Zahl.")),
    _text("Number too large.", lambda m: _("Die Zahl ist zu groß.")),
    _text("Not a valid boolean.", lambda m: _("Kein gültiger Wahrheitswert (ja oder nein).")),
    _text("Not a valid date.", lambda m: _("Kein gültiges Datum.")),
    _text("Not a valid datetime.", lambda m: _("Kein gültiger Zeitpunkt.")),
    _text("Not a valid aware datetime.",
          lambda m: _("Kein gültiger Zeitpunkt mit Zeitzone.")),
    _text("Not a valid mapping type.", lambda m: _("Keine gültige Zuordnung.")),
    _text("Not a valid email address.", lambda m: _("Keine gültige E-Mail-Adresse.")),
    # marshmallow: the schema's own (marshmallow/schema.py)
    _text("Invalid input type.", lambda m: _("Ungültige Eingabe.")),
    _text("Unknown field.", lambda m: _("Unbekanntes Feld.")),
    # --- marshmallow: validators (marshmallow/validate.py) ----------------------------------
    # Only the forms the services' validators produce: Length(max), Length(min, max), Range(min)
    # and Range(min, max), inclusive. (Length(min) alone is a list's; here for a caller that
    # does not name the field.)
    _re(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\.",
        lambda m: _("Bitte zwischen %(min)s und %(max)s Zeichen eingeben.", **m)),
    _re(r"Shorter than minimum length (?P<min>\d+)\.",
        lambda m: ngettext("Bitte mindestens %(num)s Zeichen eingeben.",
                           "Bitte mindestens %(num)s Zeichen eingeben.", _count(m, "min"))),
    _re(r"Longer than maximum length (?P<max>\d+)\.",
        lambda m: ngettext("Bitte höchstens %(num)s Zeichen eingeben.",
                           "Bitte höchstens %(num)s Zeichen eingeben.", _count(m, "max"))),
    _re(r"Must be greater than or equal to (?P<min>\S+) and less than or equal to (?P<max>\S+)\.",
        lambda m: _("Bitte einen Wert von %(min)s bis %(max)s angeben.", **m)),
    _re(r"Must be greater than or equal to (?P<min>\S+)\.",
        lambda m: _("Bitte einen Wert ab %(min)s angeben.", **m)),
    _re(r"Must be one of: (?P<choices>.*)\.",
        lambda m: _("Bitte einen dieser Werte wählen: %(choices)s.", **m)),
    _text("String does not match expected pattern.",
          lambda m: _("Die Angabe hat nicht das erwartete Format.")),
    # --- flask-smorest, werkzeug and the services' common error body -----------------------
    _text("Some fields are missing or invalid.",
          lambda m: _("Einige Angaben fehlen oder sind ungültig.")),
    _text("The browser (or proxy) sent a request that this server could not understand.",
          lambda m: _("Die Anfrage war fehlerhaft und konnte nicht verarbeitet werden.")),
    _text("The method is not allowed for the requested URL.",
          lambda m: _("Diese Aktion ist hier nicht möglich.")),
    _text("The precondition on the request for the URL failed positive evaluation.",
          lambda m: _("Der Eintrag wurde inzwischen geändert. Bitte laden Sie ihn neu und "
                      "prüfen Sie Ihre Änderung.")),
    _text('This request is required to be conditional; try using "If-Match".',
          lambda m: _("Für eine Änderung fehlt der Stand des Eintrags (If-Match). Bitte laden "
                      "Sie ihn neu.")),
    _text("The data value transmitted exceeds the capacity limit.",
          lambda m: _("Die gesendeten Daten sind zu groß.")),
    # --- gateway ----------------------------------------------------------------------------
    _text("Too many requests; please wait a little and try again.",
          lambda m: _("Zu viele Anfragen; bitte warten Sie kurz und versuchen Sie es erneut.")),
    _re(r"This needs the role (?P<needed>.+); your roles: (?P<yours>.+)\.", _role_needed),
    _re(r"(?P<method>[A-Z]+) is not allowed here; allowed: (?P<allowed>.*)\.",
        lambda m: _("%(method)s ist hier nicht erlaubt; erlaubt: %(allowed)s.", **m)),
    # --- buendnis_common: the token's organisation ------------------------------------------
    _text("Your account belongs to no organisation; ask your administrator.",
          lambda m: _("Ihr Konto gehört zu keiner Organisation; bitte wenden Sie sich an Ihre "
                      "Administration.")),
    _text("Your account belongs to more than one organisation; Bündnis needs exactly one.",
          lambda m: _("Ihr Konto gehört zu mehr als einer Organisation; Bündnis braucht genau "
                      "eine.")),
    # --- intake: participants ---------------------------------------------------------------
    _text("Not an ISO 3166-1 alpha-2 country code (e.g. SY, AF, UA).",
          lambda m: _("Kein Ländercode nach ISO 3166-1 Alpha-2 (z. B. SY, AF, UA).")),
    _text("Not an ISO 639-1 language code (e.g. ar, fa, uk, de).",
          lambda m: _("Kein Sprachcode nach ISO 639-1 (z. B. ar, fa, uk, de).")),
    _text("Not a phone number in international E.164 form (e.g. +4917612345678).",
          lambda m: _("Keine Telefonnummer im internationalen Format E.164 "
                      "(z. B. +4917612345678).")),
    _text("The birth date lies in the future.",
          lambda m: _("Das Geburtsdatum liegt in der Zukunft.")),
    _re(r"The birth date lies more than (?P<years>\d+) years back\.",
        lambda m: _("Das Geburtsdatum liegt mehr als %(years)s Jahre zurück.", **m)),
    _text("SMS needs a phone number.",
          lambda m: _("Für SMS wird eine Telefonnummer gebraucht.")),
    _text("E-mail needs an e-mail address.",
          lambda m: _("Für E-Mail wird eine E-Mail-Adresse gebraucht.")),
    _text("A language is listed twice.", lambda m: _("Eine Sprache ist doppelt angegeben.")),
    _re(r"The programme is for people aged (?P<min>\d+) to (?P<max>\d+) at intake; this birth "
        r"date gives (?P<age>-?\d+)\. To register anyway, give eligibility_override_reason\.",
        lambda m: _("Das Programm ist für Menschen, die bei der Aufnahme %(min)s bis %(max)s "
                    "Jahre alt sind; nach diesem Geburtsdatum ist die Person %(age)s. Um sie "
                    "trotzdem aufzunehmen, geben Sie eine Begründung für eine Ausnahme vom "
                    "Alter an.", **m)),
    # --- intake: consents -------------------------------------------------------------------
    _text("A category is listed twice.", lambda m: _("Eine Kategorie ist doppelt angegeben.")),
    _text("A consent must be valid at least until today.",
          lambda m: _("Eine Einwilligung muss mindestens bis heute gelten.")),
    _text("A consent may run for three years at most; ask again then.",
          lambda m: _("Eine Einwilligung gilt höchstens drei Jahre; fragen Sie danach erneut.")),
    _text("Your own organisation needs no consent.",
          lambda m: _("Für Ihre eigene Organisation braucht es keine Einwilligung.")),
    _text("This is your own organisation.", lambda m: _("Das ist Ihre eigene Organisation.")),
    _text("Consent can only be given for organisations of the same alliance.",
          lambda m: _("Eine Einwilligung kann nur für Organisationen desselben Bündnisses "
                      "erteilt werden.")),
    _text("No organisation with this alias in your alliance.",
          lambda m: _("In Ihrem Bündnis gibt es keine Organisation mit diesem Kürzel.")),
    # --- intake: import ---------------------------------------------------------------------
    _text("The file is not a readable XLSX workbook.",
          lambda m: _("Die Datei ist keine lesbare XLSX-Arbeitsmappe.")),
    _text("Not a readable XLSX workbook.", lambda m: _("Keine lesbare XLSX-Arbeitsmappe.")),
    _text("Send a .csv or .xlsx file.",
          lambda m: _("Bitte senden Sie eine CSV- oder XLSX-Datei.")),
    _text("Not .csv or .xlsx.", lambda m: _("Keine CSV- oder XLSX-Datei.")),
    _text("The file is empty.", lambda m: _("Die Datei ist leer.")),
    _text("No header row.", lambda m: _("Die Kopfzeile fehlt.")),
    _text("The header row lacks required columns.",
          lambda m: _("In der Kopfzeile fehlen Pflichtspalten.")),
    _re(r"Missing column (?P<column>.+)\.",
        lambda m: _("Die Spalte %(column)s fehlt.", **m)),
    # the import's limits (intake/importer/limits.py); counts come as 20,000
    _re(r"The file has more than (?P<max>[\d,]+) rows \(empty rows count too\); split the "
        r"list\.",
        lambda m: _("Die Datei hat mehr als %(max)s Zeilen (leere Zeilen zählen mit); bitte "
                    "teilen Sie die Liste auf.", **_numbers(m))),
    _re(r"The file has more than (?P<max>[\d,]+) columns\.",
        lambda m: _("Die Datei hat mehr als %(max)s Spalten.", **_numbers(m))),
    _re(r"Row (?P<row>[\d,]+) has a field of more than (?P<max>[\d,]+) characters\.",
        lambda m: _("Zeile %(row)s hat ein Feld mit mehr als %(max)s Zeichen.", **_numbers(m))),
    _re(r"The file has (?P<found>[\d,]+) bytes; at most (?P<max>[\d,]+) are accepted\. "
        r"Split the list\.",
        lambda m: _("Die Datei hat %(found)s Byte; angenommen werden höchstens %(max)s. Bitte "
                    "teilen Sie die Liste auf.", **_numbers(m))),
    _re(r"A part of the workbook unpacks to (?P<found>[\d,]+) bytes; at most "
        r"(?P<max>[\d,]+) are accepted\.",
        lambda m: _("Ein Teil der Arbeitsmappe wird entpackt %(found)s Byte groß; angenommen "
                    "werden höchstens %(max)s.", **_numbers(m))),
    _re(r"The workbook unpacks to (?P<found>[\d,]+) bytes; at most (?P<max>[\d,]+) are "
        r"accepted\.",
        lambda m: _("Die Arbeitsmappe wird entpackt %(found)s Byte groß; angenommen werden "
                    "höchstens %(max)s.", **_numbers(m))),
    _re(r"A part of the workbook is compressed (?P<found>[\d,]+) to 1; at most "
        r"(?P<max>[\d,]+) to 1 is accepted\.",
        lambda m: _("Ein Teil der Arbeitsmappe ist im Verhältnis %(found)s zu 1 gepackt; "
                    "angenommen wird höchstens %(max)s zu 1.", **_numbers(m))),
    _re(r"The workbook has (?P<found>[\d,]+) parts; at most (?P<max>[\d,]+) are accepted\.",
        lambda m: _("Die Arbeitsmappe hat %(found)s Teile; angenommen werden höchstens "
                    "%(max)s.", **_numbers(m))),
    _text("The workbook contains a document type declaration or entities, which are not "
          "accepted.",
          lambda m: _("Die Arbeitsmappe enthält eine Dokumenttyp-Deklaration oder Entitäten; "
                      "das wird nicht angenommen.")),
    _re(r"Nothing was imported: (?P<invalid>\d+) of (?P<rows>\d+) rows have errors\. Correct "
        r"them, or import the valid rows only \(mode=valid_rows\)\.",
        lambda m: _("Es wurde nichts importiert: %(invalid)s von %(rows)s Zeilen haben Fehler. "
                    "Korrigieren Sie sie oder importieren Sie nur die fehlerfreien Zeilen.",
                    **m)),
    # --- referrals: who may -----------------------------------------------------------------
    _re(r"Only case workers and coordinators can (?P<what>.+)\.", _case_role),
    _text("Your organisation belongs to no alliance.",
          lambda m: _("Ihre Organisation gehört zu keinem Bündnis.")),
    # --- referrals: referrals ---------------------------------------------------------------
    _text("A referral goes to another organisation than your own.",
          lambda m: _("Eine Vermittlung geht an eine andere Organisation als Ihre eigene.")),
    _re(r"There is no organisation (?P<q>['\"])(?P<org>.*)(?P=q) in your alliance\.",
        lambda m: _("In Ihrem Bündnis gibt es keine Organisation „%(org)s“.", org=m["org"])),
    _text("There is no such offer in your alliance's catalogue.",
          lambda m: _("Dieses Angebot gibt es im Katalog Ihres Bündnisses nicht.")),
    _re(r"This offer is not provided by (?P<org>.+)\.",
        lambda m: _("Dieses Angebot wird nicht von %(org)s angeboten.", **m)),
    _re(r"This offer is for (?P<offer>\S+), not (?P<need>\S+)\.",
        lambda m: _("Dieses Angebot ist für den Bedarf „%(offer)s“, nicht für „%(need)s“.",
                    offer=_need(m["offer"]), need=_need(m["need"]))),
    _text("This offer is no longer active.", lambda m: _("Dieses Angebot ist nicht mehr aktiv.")),
    _re(r"There is already an open referral of this participant to (?P<org>.+) for "
        r"(?P<need>\S+): (?P<referral>[0-9a-fA-F-]+)\.",
        lambda m: _("Es gibt schon eine offene Vermittlung dieser Person an %(org)s für den "
                    "Bedarf „%(need)s“: %(referral)s.",
                    org=m["org"], need=_need(m["need"]), referral=m["referral"])),
    _re(r"The participant has not consented to share data with (?P<org>.+) for a referral "
        r"\(or the consent has expired or was withdrawn\)\. Record the consent first\.",
        lambda m: _("Die Person hat nicht eingewilligt, für eine Vermittlung Daten mit %(org)s "
                    "zu teilen (oder die Einwilligung ist abgelaufen oder wurde widerrufen). "
                    "Bitte erfassen Sie zuerst die Einwilligung.", **m)),
    _re(r"No valid consent for (?P<org>.+)\.",
        lambda m: _("Keine gültige Einwilligung für %(org)s.", **m)),
    _re(r"A referral that is (?P<current>\S+) cannot become (?P<wanted>\S+)\. "
        r"(?:You can set: (?P<allowed>.+)\.|You can set no status now\.)", _cannot_become),
    _re(r"Only the (?P<who>.+?) can set (?P<status>\S+)\.(?: You can set: (?P<allowed>.+)\.)?",
        _only_side_can_set),
    _re(r"Say why the referral is (?P<status>\S+)\.",
        lambda m: _("Bitte geben Sie einen Grund an, warum die Vermittlung den Status "
                    "„%(status)s“ bekommt.", status=_referral_status(m["status"]))),
    # --- referrals: offers ------------------------------------------------------------------
    _text("max_age must not be below min_age.",
          lambda m: _("Das Höchstalter darf nicht unter dem Mindestalter liegen.")),
    _text("Use an ISO 639-1 code.",
          lambda m: _("Bitte geben Sie einen Sprachcode nach ISO 639-1 an.")),
    _text("Only the organisation that provides this offer can change it.",
          lambda m: _("Nur die Organisation, die dieses Angebot anbietet, kann es ändern.")),
    # --- referrals: appointments ------------------------------------------------------------
    _text("An appointment ends after it starts.",
          lambda m: _("Ein Termin muss nach seinem Beginn enden.")),
    _text("Say why the appointment is cancelled.",
          lambda m: _("Bitte geben Sie an, warum der Termin abgesagt wird.")),
    _text("The time lies outside the calendar.",
          lambda m: _("Die Zeit liegt außerhalb des Kalenders.")),
    _text("'from' lies after 'to'.", lambda m: _("„Von“ liegt nach „bis“.")),
    _re(r"The referral is (?P<status>\S+); no appointments can be booked on it\.",
        lambda m: _("Die Vermittlung hat den Status „%(status)s“; für sie können keine Termine "
                    "gebucht werden.", status=_referral_status(m["status"]))),
    _re(r"The referral is (?P<status>\S+); its appointments stay as they are\.",
        lambda m: _("Die Vermittlung hat den Status „%(status)s“; ihre Termine bleiben, wie sie "
                    "sind.", status=_referral_status(m["status"]))),
    _re(r"The referral is (?P<status>\S+)\.",
        lambda m: _("Die Vermittlung hat den Status „%(status)s“.",
                    status=_referral_status(m["status"]))),
    _re(r"The appointment is (?P<status>\S+); it cannot be changed\.",
        lambda m: _("Der Termin hat den Status „%(status)s“ und kann nicht mehr geändert "
                    "werden.", status=_appointment_status(m["status"]))),
    _re(r"The appointment is (?P<status>\S+)\.",
        lambda m: _("Der Termin hat den Status „%(status)s“.",
                    status=_appointment_status(m["status"]))),
    _text("Move an appointment or set its status, not both at once.",
          lambda m: _("Verschieben Sie den Termin oder setzen Sie seinen Status, nicht beides "
                      "zugleich.")),
    _text("Attendance can be recorded once the appointment has started.",
          lambda m: _("Ob die Person gekommen ist, kann erst nach Beginn des Termins erfasst "
                      "werden.")),
    # --- referrals: reports -----------------------------------------------------------------
    _text("A comma-separated list.",
          lambda m: _("Bitte eine durch Kommas getrennte Liste angeben.")),
    _re(r"Unknown grouping (?P<unknown>.+); use any of (?P<allowed>.+)\.",
        lambda m: _("Unbekannte Gruppierung %(unknown)s; möglich sind: %(allowed)s.", **m)),
    _text("from must not be after to.",
          lambda m: _("Der Beginn des Zeitraums darf nicht nach seinem Ende liegen.")),
    _text("Your organisation belongs to no alliance, so it has no reports.",
          lambda m: _("Ihre Organisation gehört zu keinem Bündnis und hat daher keine "
                      "Berichte.")),
    _re(r"You can read the reports of your own alliance \((?P<alliance>.+)\) only\.",
        lambda m: _("Sie können nur die Berichte Ihres eigenen Bündnisses (%(alliance)s) "
                    "lesen.", **m)),
    _text("Reports are for the core group, coordinators and the ministry.",
          lambda m: _("Berichte sind für die Bündniskerngruppe, die Koordinierenden und das "
                      "Ministerium.")),
)


def _is_list_field(field: str | None) -> bool:
    """``languages``, ``needs.3``, ``contact.x``: the last part that is not an index."""
    if not field:
        return False
    names = [part for part in field.split(".") if not part.isdigit()]
    return bool(names) and names[-1] in LIST_FIELDS


def _groups(match: re.Match[str]) -> dict[str, str]:
    return {key: value for key, value in match.groupdict().items() if value is not None}


def localize(message: str, field: str | None = None) -> str:
    """The API's ``message`` in the page's language; unchanged if it is not a known one.

    ``field``, where known (``languages``, ``contact.phone``), tells a list field's length
    (entries) from a text's (characters)."""
    text = str(message)
    rules: Iterable[Rule] = (*LIST_RULES, *RULES) if _is_list_field(field) else RULES
    for pattern, render in rules:
        match = pattern.match(text)
        if match:
            return render(_groups(match))
    return text
