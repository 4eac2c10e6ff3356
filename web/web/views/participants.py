"""Participants: list and search, registration, detail (needs, consents, referrals), import."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from buendnis_common import messages

from .. import api, forms, i18n
from ..auth import current_user, has_role

blp = Blueprint("participants", __name__, url_prefix="/teilnehmende")

PAGE_SIZE = 25
SEARCH_PAGE_SIZE = 100
FILTERS = ("need_category", "need_status", "residence_status")

# The registration form's fields, named as ParticipantCreate names them (dotted = nested).
PARTICIPANT_FIELDS = (
    "given_name", "family_name", "birth_date", "residence_status", "residence_valid_until",
    "gender", "nationality", "languages", "municipality", "contact.phone", "contact.email",
    "contact.preferred_channel", "contact.language", "education.highest_qualification",
    "education.years_of_schooling", "education.note", "eligibility_override_reason",
)
# What a change may touch: needs change on their own; the age exception is the intake's.
UPDATE_FIELDS = tuple(f for f in PARTICIPANT_FIELDS if f != "eligibility_override_reason")
PARTICIPANT_MULTI = ("languages", "needs")
NEED_FIELDS = ("category", "note")
CONSENT_FIELDS = ("recipient_org", "data_categories", "valid_until")
# The moves offered beside a need, by its current status.
NEED_MOVES = {
    "open": ("in_progress", "met", "dropped"),
    "in_progress": ("met", "dropped", "open"),
    "met": ("open",),
    "dropped": ("open",),
}


@blp.before_request
def _case_workers_only() -> None:
    # The API refuses the other roles too; this says so before a form is filled in for nothing.
    if not has_role("case_worker"):
        raise api.ApiError(403, _("Nur Fallbearbeitende arbeiten mit Teilnehmenden."))


def _field_errors(exc: api.ApiError, fields: tuple[str, ...]) -> dict[str, str]:
    """The API's field errors under the form's field names: ``needs.0.category`` and
    ``languages.1`` belong to the ``needs`` and ``languages`` fields."""
    errors: dict[str, str] = {}
    for name, message in exc.field_errors().items():
        target = name
        if name not in fields:
            target = next((f for f in fields if name.startswith(f + ".")), name)
        errors[target] = f"{errors[target]} {message}" if target in errors else message
    return errors


# --- list and search ---------------------------------------------------------------------


@blp.route("/", methods=["GET", "POST"])
def index() -> str:
    """The own organisation's participants. Filters are codes and go into the URL; the name
    search is POSTed so that no name ends up in a URL, a log or the browser history."""
    filters = {name: request.args.get(name, "") for name in FILTERS}
    # A search sent when the session had ended comes back here after signing in again.
    searched = forms.form_values()
    query = (searched.get("q") or "").strip()
    errors: dict[str, str] = {}
    participants: list[dict[str, Any]] = []
    pagination: dict[str, Any] = {}
    try:
        if query:
            answer = api.get("/api/v1/participants", q=query, page_size=SEARCH_PAGE_SIZE,
                             **filters)
        else:
            answer = api.get("/api/v1/participants", page=request.args.get("page", 1),
                             page_size=PAGE_SIZE, **filters)
        participants, pagination = answer.body, answer.pagination
    except api.ApiError as exc:
        if exc.status != 422:
            raise
        errors = _field_errors(exc, ("q", *FILTERS))
    return render_template(
        "participants/index.html", participants=participants, pagination=pagination,
        filters=filters, query=query, search={"q": query}, errors=errors,
        filtered=any(filters.values()),
    )


# --- registration ------------------------------------------------------------------------


def _participant_body(values: dict[str, Any]) -> dict[str, Any]:
    body = forms.to_json(values, PARTICIPANT_FIELDS)
    needs = values.get("needs") or []
    if needs:
        body["needs"] = [{"category": category} for category in needs]
    return body


@blp.route("/neu", methods=["GET", "POST"])
def new() -> str | Response:
    values = forms.form_values(multi=PARTICIPANT_MULTI)
    kept = forms.was_kept(values)
    errors: dict[str, str] = {}
    message = None
    if request.method == "POST":
        try:
            created = api.post("/api/v1/participants", _participant_body(values)).body
        except api.ApiError as exc:
            if exc.status not in (409, 422):
                raise
            errors = _field_errors(exc, (*PARTICIPANT_FIELDS, "needs"))
            message = exc.localized_message if exc.status == 409 or not errors else None
        else:
            flash(_("Registriert unter dem Pseudonym %(pseudonym)s.",
                    pseudonym=created["pseudonym"]), "success")
            duplicates = created.get("possible_duplicates") or []
            if duplicates:
                names = ", ".join(org.get("organization_name") or org.get("organization", "")
                                  for org in duplicates)
                flash(_("Hinweis: Diese Person ist möglicherweise schon bekannt bei: %(orgs)s. "
                        "Sprechen Sie sich ab, bevor Sie doppelt vermitteln.", orgs=names),
                      "info")
            return redirect(url_for("participants.detail", participant_id=created["id"]))
    return render_template(
        "participants/new.html", values=values, errors=errors, message=message, kept=kept,
    ), 422 if errors or message else 200


def _update_body(values: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body: emptied fields are sent as null (cleared), not left out (kept)."""
    values = {"languages": [], **values}  # no language chosen sends no field at all
    body = forms.to_json(values, UPDATE_FIELDS, keep_empty=True)
    for group in ("contact", "education"):
        inner = body.get(group) or {}
        if all(value is None for value in inner.values()):
            body[group] = None
    if body.get("education") and body["education"].get("highest_qualification") is None:
        # The API knows no "no qualification given" inside an education record.
        body["education"].pop("highest_qualification")
    return body


@blp.route("/<uuid:participant_id>/bearbeiten", methods=["GET", "POST"])
def edit(participant_id: UUID) -> tuple[str, int] | Response:
    path = f"/api/v1/participants/{participant_id}"
    values = forms.form_values(multi=("languages",))
    kept = forms.was_kept(values)
    errors: dict[str, str] = {}
    message = None
    stale = False
    if request.method == "POST":
        try:
            api.patch(path, _update_body(values), etag=values.get("etag") or None)
        except api.ApiError as exc:
            if exc.status in (412, 428):
                stale = True
            elif exc.status in (409, 422):
                errors = _field_errors(exc, UPDATE_FIELDS)
                message = None if errors else exc.localized_message
            else:
                raise
        else:
            flash(_("Die Angaben wurden gespeichert."), "success")
            return redirect(url_for("participants.detail", participant_id=participant_id))
    current = api.get(path)
    if request.method == "GET" and not kept:
        # The ETag of what the user sees travels with the form: a change by someone else
        # meanwhile then fails (412) instead of being overwritten.
        values = {**forms.flatten(current.body), "etag": current.etag}
    return render_template(
        "participants/edit.html", participant_id=participant_id,
        pseudonym=current.body["pseudonym"], values=values, etag=values.get("etag"),
        errors=errors, message=message, kept=kept, stale=stale,
    ), 422 if errors or message else 412 if stale else 200


# --- detail and its sub-actions ----------------------------------------------------------


def _organizations() -> dict[str, dict[str, Any]]:
    return {org["alias"]: org for org in api.organizations()}


def _render_detail(participant_id: UUID, *, form: str | None = None,
                   values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                   message: str | None = None, status: int = 200) -> tuple[str, int]:
    """The detail page; ``form`` names the sub-form whose values and errors are shown."""
    participant = api.get(f"/api/v1/participants/{participant_id}").body
    consents = api.get(f"/api/v1/participants/{participant_id}/consents").body
    referrals = api.get("/api/v1/referrals", participant_id=str(participant_id), box="sent",
                        page_size=100).body
    organizations = _organizations()
    own = current_user()["organization"]["alias"]
    recipients = [(alias, org["name"]) for alias, org in organizations.items() if alias != own]
    countries = dict(i18n.country_choices())
    return render_template(
        "participants/detail.html",
        participant=participant, consents=consents, referrals=referrals,
        organizations=organizations, recipients=recipients,
        country=countries.get(participant.get("nationality") or "", participant.get("nationality")),
        need_moves=NEED_MOVES,
        form=form, values=values or {}, errors=errors or {}, message=message,
    ), status


@blp.get("/<uuid:participant_id>")
def detail(participant_id: UUID) -> tuple[str, int]:
    return _render_detail(participant_id)


def _back(participant_id: UUID, anchor: str) -> Response:
    return redirect(url_for("participants.detail", participant_id=participant_id) + anchor)


@blp.post("/<uuid:participant_id>/bedarfe")
def add_need(participant_id: UUID) -> tuple[str, int] | Response:
    values = forms.form_values()
    try:
        need = api.post(f"/api/v1/participants/{participant_id}/needs",
                        forms.to_json(values, NEED_FIELDS)).body
    except api.ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = _field_errors(exc, NEED_FIELDS)
        return _render_detail(participant_id, form="need", values=values, errors=errors,
                              message=None if errors else exc.localized_message, status=exc.status)
    flash(_("Bedarf „%(need)s“ hinzugefügt.", need=i18n.label("need_category", need["category"])),
          "success")
    return _back(participant_id, "#bedarfe")


@blp.post("/<uuid:participant_id>/bedarfe/<uuid:need_id>/status")
def set_need_status(participant_id: UUID, need_id: UUID) -> tuple[str, int] | Response:
    path = f"/api/v1/participants/{participant_id}/needs/{need_id}"
    current = api.get(path)
    # The PATCH carries the ETag of the need as it is now; that the user decided on what they
    # saw is checked by its last change, so a change by someone else meanwhile is not overwritten.
    if request.form.get("seen") != (current.body or {}).get("updated_at"):
        flash(_("Dieser Bedarf wurde inzwischen geändert. Bitte prüfen Sie ihn und wählen Sie "
                "erneut."), "error")
        return _back(participant_id, "#bedarfe")
    try:
        need = api.patch(path, {"status": request.form.get("status", "")},
                         etag=current.etag).body
    except api.ApiError as exc:
        if exc.status == 412:
            flash(_("Dieser Bedarf wurde inzwischen geändert. Bitte prüfen Sie ihn und wählen "
                    "Sie erneut."), "error")
            return _back(participant_id, "#bedarfe")
        if exc.status not in (409, 422):
            raise
        return _render_detail(participant_id, form="need", message=exc.localized_message,
                              status=exc.status)
    flash(_("Bedarf „%(need)s“ ist jetzt: %(status)s.",
            need=i18n.label("need_category", need["category"]),
            status=i18n.label("need_status", need["status"])), "success")
    return _back(participant_id, "#bedarfe")


@blp.post("/<uuid:participant_id>/einwilligungen")
def grant_consent(participant_id: UUID) -> tuple[str, int] | Response:
    values = forms.form_values(multi=("data_categories",))
    body = forms.to_json(values, CONSENT_FIELDS)
    body["purpose"] = "referral"  # the only purpose the platform records consent for
    try:
        consent = api.post(f"/api/v1/participants/{participant_id}/consents", body).body
    except api.ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = _field_errors(exc, CONSENT_FIELDS)
        return _render_detail(participant_id, form="consent", values=values, errors=errors,
                              message=None if errors else exc.localized_message, status=exc.status)
    recipient = _organizations().get(consent["recipient_org"], {})
    flash(_("Einwilligung für %(org)s erfasst.",
            org=recipient.get("name", consent["recipient_org"])), "success")
    return _back(participant_id, "#einwilligungen")


@blp.post("/<uuid:participant_id>/einwilligungen/<uuid:consent_id>/widerrufen")
def withdraw_consent(participant_id: UUID, consent_id: UUID) -> tuple[str, int] | Response:
    try:
        api.delete(f"/api/v1/participants/{participant_id}/consents/{consent_id}")
    except api.ApiError as exc:
        if exc.status != 409:
            raise
        return _render_detail(participant_id, form="consent", message=exc.localized_message,
                              status=exc.status)
    flash(_("Einwilligung widerrufen. Ab jetzt wird unter ihr nichts mehr geteilt."), "success")
    return _back(participant_id, "#einwilligungen")


# --- import ------------------------------------------------------------------------------


def _import_columns() -> dict[str, str]:
    """The importer's column names (as its report names them) as a German list heads them."""
    return {
        "given_name": _("Vorname"), "family_name": _("Nachname"),
        "birth_date": _("Geburtsdatum"), "residence_status": _("Aufenthaltsstatus"),
        "residence_valid_until": _("Aufenthalt gültig bis"), "gender": _("Geschlecht"),
        "nationality": _("Staatsangehörigkeit"), "languages": _("Sprachen"),
        "municipality": _("Kommune"), "phone": _("Telefon"), "email": _("E-Mail"),
        "preferred_channel": _("Kanal"), "contact_language": _("Kontaktsprache"),
        "needs": _("Bedarfe"), "eligibility_override_reason": _("Begründung Ausnahme"),
    }


def _import_modes() -> list[tuple[str, str]]:
    return [
        ("all_or_nothing", _("Alles oder nichts: bei einem Fehler wird nichts importiert")),
        ("valid_rows", _("Nur die fehlerfreien Zeilen importieren")),
    ]


@blp.route("/import", methods=["GET", "POST"])
def import_list() -> tuple[str, int]:
    values = forms.form_values()
    values.setdefault("mode", "all_or_nothing")
    errors: dict[str, str] = {}
    message = None
    report = None
    row_errors: list[dict[str, Any]] = []
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors["file"] = _("Bitte wählen Sie eine CSV- oder XLSX-Datei aus.")
            status = 422
        else:
            files = {
                "file": (upload.filename, upload.stream, upload.mimetype
                         or "application/octet-stream"),
                # A form field beside the file: requests sends a part without a file name.
                "mode": (None, values.get("mode") or "all_or_nothing"),
            }
            try:
                answer = api.call("POST", "/api/v1/participants/import", files=files)
                if answer.status == 202:  # a long list: the worker imports it
                    return redirect(url_for("participants.import_progress",
                                            import_id=answer.body["id"]))
                report = answer.body
                row_errors = report.get("errors") or []
            except api.ApiError as exc:
                status = exc.status
                message = exc.localized_message
                rows = exc.errors.get("rows") if isinstance(exc.errors, dict) else None
                if isinstance(rows, list):
                    row_errors = rows
                else:
                    errors = _field_errors(exc, ("file", "mode"))
    return render_template(
        "participants/import.html", values=values, errors=errors, message=message,
        report=report, row_errors=row_errors, modes=_import_modes(),
        columns=_import_columns(),
    ), status


def _stored_refusal(progress: dict, row_errors: list, file_errors: list) -> str | None:
    """Why the worker imported nothing, in the page's language: the worker has no request
    and keeps its English sentence, but the errors it keeps carry their codes, which the
    shared catalogue says in German or English."""
    language = str(get_locale() or "de")
    if row_errors:
        return messages.text("import.rows_invalid", {
            "invalid": len({error["row"] for error in row_errors}),
            "rows": progress.get("rows_total") or 0}, language)
    coded = [error for error in file_errors if api.is_field_error(error)]
    if coded:
        return " ".join(messages.text(error["code"], error.get("params"), language)
                        for error in coded)
    return None


@blp.route("/import/<uuid:import_id>")
def import_progress(import_id: UUID) -> Response | tuple[str, int]:
    """A long list the worker imports: its progress, then the same report as a short list's."""
    progress = api.call("GET", f"/api/v1/participants/imports/{import_id}").body
    report = progress.get("report") if progress["status"] == "done" else None
    problems = progress.get("errors") or {}
    row_errors = (report or {}).get("errors") or problems.get("rows") or []
    file_errors = problems.get("file") or []
    message = progress.get("message")
    if message and progress["status"] == "failed":
        message = _stored_refusal(progress, row_errors, file_errors) or message
    return render_template(
        "participants/import.html", values={"mode": progress.get("mode")},
        errors={"file": " ".join(api.error_text(error) for error in file_errors)}
        if file_errors else {},
        message=message, report=report, row_errors=row_errors, modes=_import_modes(),
        columns=_import_columns(), progress=progress,
    ), 200
