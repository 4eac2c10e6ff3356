"""Referrals: sent and received, a new referral with the consent check, and the detail with
status, history, messages, appointments and their reminders.

Sub-actions on a referral are POSTs under ``/vermittlungen/<id>/…`` that redirect back to the
detail (Post/Redirect/Get); when the API refuses, the detail is shown again with the API's
message beside the field of the form that was sent.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.wrappers import Response

from buendnis_common import vocabulary

from .. import api, forms, i18n
from ..auth import has_role

blp = Blueprint("referrals", __name__, url_prefix="/vermittlungen")

BERLIN = ZoneInfo("Europe/Berlin")
BOXES = ("received", "sent")
PAGE_SIZE = 20
OFFERS_PAGE_SIZE = 50
# The statuses whose move needs a reason (DESIGN.md); the API says so too, with a 422.
REASON_REQUIRED = frozenset({"rejected", "cancelled", "on-hold", "failed"})
# Appointments take these modes (offers also know "mixed").
APPOINTMENT_MODES = ("in_person", "phone", "video")
REFERRAL_FIELDS = ("participant_id", "to_org", "need_category", "offer_id", "note")
BOOK_FIELDS = ("start", "end", "mode", "location", "note")
ATTENDANCE = ("fulfilled", "noshow")
Page = tuple[str, int]


@blp.before_request
def _case_workers_only() -> None:
    # The API refuses the other roles too; this says so before anything is filled in.
    if not has_role("case_worker"):
        raise api.ApiError(403, _("Nur Fallbearbeitende arbeiten mit Vermittlungen."))


def _organisations() -> dict[str, str]:
    """Alias → name of the organisations the user may address (their alliance)."""
    return {org["alias"]: org["name"] for org in api.organizations()}


def _known_status(code: str | None) -> str | None:
    return code if code in vocabulary.REFERRAL_STATUSES else None


# --- the list ------------------------------------------------------------------------------


@blp.get("/")
def index() -> str:
    """Received or sent referrals; the filters are codes, so they may go into the URL."""
    box = request.args.get("box") if request.args.get("box") in BOXES else "received"
    status = _known_status(request.args.get("status")) or ""
    overdue = request.args.get("overdue") == "1"
    # "Absage erbeten": a participant asked to cancel an appointment (received box).
    cancel_requested = box == "received" and request.args.get("absage") == "1"
    answer = api.get("/api/v1/referrals", box=box, status=status,
                     overdue="true" if overdue else None,
                     cancel_requested="true" if cancel_requested else None,
                     page=request.args.get("page", 1, type=int), page_size=PAGE_SIZE)
    return render_template(
        "referrals/index.html",
        referrals=answer.body or [], pagination=answer.pagination, box=box,
        filters={"status": status, "overdue": ["1"] if overdue else [],
                 "absage": ["1"] if cancel_requested else []},
        filtered=bool(status or overdue or cancel_requested), organisations=_organisations(),
    )


# --- a new referral --------------------------------------------------------------------------


def _participant_id(values: dict[str, Any]) -> UUID | None:
    """From the query string, or from the form (a form kept over a new sign-in comes back
    without the query string)."""
    raw = request.args.get("participant_id") or values.get("participant_id") or ""
    if not raw:
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        abort(404)


def _valid_consents(consents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per recipient organisation the valid consent that lasts longest (withdrawn or expired
    ones do not count: the API would refuse the referral)."""
    found: dict[str, dict[str, Any]] = {}
    for consent in consents:
        if not consent.get("valid") or consent.get("withdrawn_at"):
            continue
        current = found.get(consent["recipient_org"])
        if current is None or str(consent.get("valid_until")) > str(current.get("valid_until")):
            found[consent["recipient_org"]] = consent
    return found


@blp.route("/neu", methods=["GET", "POST"])
def new() -> Page | Response:
    values = forms.form_values()
    participant_id = _participant_id(values)
    if participant_id is None:
        flash(_("Wählen Sie zuerst die Person aus, die Sie vermitteln möchten."), "info")
        return redirect(url_for("participants.index"))
    participant = api.get(f"/api/v1/participants/{participant_id}").body
    consents = _valid_consents(api.get(f"/api/v1/participants/{participant_id}/consents").body
                               or [])
    offers = api.get("/api/v1/offers", participant_id=str(participant_id),
                     page_size=OFFERS_PAGE_SIZE).body or []
    by_id = {offer["id"]: offer for offer in offers}
    errors: dict[str, str] = {}
    message = None
    consent_message = None
    status = 200
    if request.method == "POST" or forms.was_kept(values):
        chosen = by_id.get(values.get("offer_id") or "")
        if request.method == "POST" and chosen is None:
            errors["offer_id"] = (
                _("Dieses Angebot passt nicht mehr zur Person oder ist nicht mehr aktiv. "
                  "Bitte wählen Sie erneut.") if values.get("offer_id")
                else _("Bitte wählen Sie ein Angebot."))
            status = 422
        elif request.method == "POST":
            fields = dict(values, participant_id=str(participant_id),
                          to_org=chosen["provider_org"])
            # Left on "as the offer": the offer's category (the API wants the two to match).
            fields["need_category"] = values.get("need_category") or chosen["category"]
            try:
                created = api.post("/api/v1/referrals",
                                   forms.to_json(fields, REFERRAL_FIELDS)).body
            except api.ApiError as exc:
                if exc.status not in (409, 422):
                    raise
                status = exc.status
                if "consent" in (exc.errors or {}):
                    consent_message = exc.localized_message
                else:
                    errors = {name: text for name, text in exc.field_errors().items()
                              if name in ("need_category", "offer_id", "note")}
                    message = exc.localized_message
            else:
                flash(_("Die Vermittlung an %(org)s ist gesendet.",
                        org=_organisations().get(created["to_org"], created["to_org"])),
                      "success")
                return redirect(url_for("referrals.detail", referral_id=created["id"]))
    else:
        # Preselected: the offer named in the URL, else the best fitting one; and its category.
        chosen = by_id.get(request.args.get("offer_id") or "") or (offers[0] if offers else None)
        if chosen:
            values = {"offer_id": chosen["id"], "need_category": chosen["category"]}
    chosen = by_id.get(values.get("offer_id") or "")
    open_needs = [need for need in participant.get("needs") or []
                  if need.get("status") in (None, "open", "in_progress")]
    return render_template(
        "referrals/new.html",
        participant=participant, offers=offers, consents=consents, chosen=chosen,
        open_needs=open_needs, organisations=_organisations(), values=values, errors=errors,
        message=message, consent_message=consent_message,
    ), status


# --- the detail --------------------------------------------------------------------------------


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _local_input(value: str | None) -> str:
    """An API time as a ``datetime-local`` value in Berlin time."""
    if not value:
        return ""
    return _parse_time(value).astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


def _berlin_iso(value: str) -> str | None:
    """A ``datetime-local`` value, meant in Berlin time, as ISO 8601 with its offset."""
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=BERLIN)
    return local.isoformat()


def _appointment_prefix(appointment_id: Any) -> str:
    return f"termin-{appointment_id}-"


def _lead_time(seconds: int | None) -> str | None:
    """A reminder's offset before the appointment in words: "1 Tag", "2 Stunden"."""
    if seconds is None:
        return None
    # Each unit spelled out, so that the catalogue extraction finds every form.
    if seconds and seconds % 86400 == 0:
        return ngettext("%(num)d Tag", "%(num)d Tage", seconds // 86400)
    if seconds and seconds % 3600 == 0:
        return ngettext("%(num)d Stunde", "%(num)d Stunden", seconds // 3600)
    if seconds and seconds % 60 == 0:
        return ngettext("%(num)d Minute", "%(num)d Minuten", seconds // 60)
    return ngettext("%(num)d Sekunde", "%(num)d Sekunden", seconds)


def _reminders(appointment_id: str) -> list[dict[str, Any]] | None:
    """The appointment's reminders; ``None`` while the notifications service does not know the
    appointment yet (it learns of it through an event) or does not show them to this user."""
    try:
        found = api.get("/api/v1/reminders", appointment_id=appointment_id).body or []
    except (api.ApiNotFound, api.ApiError):
        return None
    return [dict(reminder, lead_time=_lead_time(reminder.get("offset_seconds")))
            for reminder in found]


def _render_detail(referral_id: UUID, *, values: dict[str, Any] | None = None,
                   errors: dict[str, str] | None = None, message: str | None = None,
                   open_form: str | None = None, status: int = 200) -> Page:
    """The detail page; after a refused sub-action with the sent values, the errors beside
    their fields and ``open_form`` (the form that was sent) unfolded."""
    path = f"/api/v1/referrals/{referral_id}"
    referral = api.get(path).body  # another organisation's: 404, and the 404 page
    offer = None
    if referral.get("offer_id"):
        try:
            offer = api.get(f"/api/v1/offers/{referral['offer_id']}").body
        except api.ApiNotFound:
            offer = None
    history = api.get(f"{path}/history").body or []
    thread = api.get(f"{path}/messages").body or []
    appointments = []
    now = datetime.now(UTC)
    shown = dict(values or {})
    for listed in api.get(f"{path}/appointments").body or []:
        # Each appointment with its ETag, carried in the forms: a change by someone else since
        # this page was loaded then answers 412 instead of being overwritten.
        current = api.get(f"/api/v1/appointments/{listed['id']}")
        appointment = dict(current.body, etag=current.etag or "",
                           prefix=_appointment_prefix(listed["id"]),
                           started=_parse_time(current.body["start"]) <= now,
                           reminders=_reminders(listed["id"]))
        for name in ("start", "end"):
            shown.setdefault(appointment["prefix"] + name, _local_input(appointment[name]))
        appointments.append(appointment)
    shown.setdefault("mode", "in_person")
    return render_template(
        "referrals/detail.html",
        referral=referral, offer=offer, history=history, thread=thread,
        appointments=appointments, organisations=_organisations(),
        countries=dict(i18n.country_choices()), reason_required=REASON_REQUIRED,
        appointment_modes=[(m, i18n.label("mode", m)) for m in APPOINTMENT_MODES],
        values=shown, errors=errors or {}, message=message, open_form=open_form,
    ), status


@blp.get("/<uuid:referral_id>")
def detail(referral_id: UUID) -> Page:
    return _render_detail(referral_id)


def _back(referral_id: UUID, anchor: str = "") -> Response:
    return redirect(url_for("referrals.detail", referral_id=referral_id) + anchor)


def _kept_or_back(referral_id: UUID) -> Page | Response:
    """A sub-action's URL opened with GET: after a new sign-in the browser comes here with the
    form that was being sent kept; show it again on the detail, else just go there."""
    values = forms.form_values()
    if not values:
        return _back(referral_id)
    flash(_("Ihre Eingaben sind erhalten. Bitte senden Sie sie erneut."), "info")
    return _render_detail(referral_id, values=values, open_form=values.get("form"))


def _refused(referral_id: UUID, exc: api.ApiError, values: dict[str, Any],
             fields: dict[str, str], open_form: str | None = None) -> Page:
    """The detail again after the API refused: field errors beside the form's fields
    (``fields`` maps the API's names to them), anything else as the API's message."""
    if exc.status not in (403, 409, 412, 422, 428):
        raise exc
    errors = {fields[name]: text for name, text in exc.field_errors().items() if name in fields}
    return _render_detail(referral_id, values=values, errors=errors,
                          message=None if errors else exc.localized_message, open_form=open_form,
                          status=exc.status)


@blp.route("/<uuid:referral_id>/status", methods=["GET", "POST"])
def change_status(referral_id: UUID) -> Page | Response:
    if request.method == "GET":
        return _kept_or_back(referral_id)
    values = forms.form_values()
    status = _known_status(values.get("status"))
    if status is None:
        abort(400)
    reason_field = f"reason-{status}"
    body = {"status": status}
    reason = (values.get(reason_field) or "").strip()
    if reason:
        body["reason"] = reason
    try:
        api.post(f"/api/v1/referrals/{referral_id}/status", body)
    except api.ApiError as exc:
        return _refused(referral_id, exc, values, {"reason": reason_field})
    flash(_("Der Status ist jetzt: %(status)s.",
            status=i18n.label("referral_status", status)), "success")
    return _back(referral_id)


@blp.route("/<uuid:referral_id>/nachrichten", methods=["GET", "POST"])
def post_message(referral_id: UUID) -> Page | Response:
    if request.method == "GET":
        return _kept_or_back(referral_id)
    values = forms.form_values()
    try:
        api.post(f"/api/v1/referrals/{referral_id}/messages",
                 forms.to_json(values, ("text",)))
    except api.ApiError as exc:
        return _refused(referral_id, exc, values, {"text": "text"})
    flash(_("Die Nachricht ist gesendet."), "success")
    return _back(referral_id, "#nachrichten")


def _times(values: dict[str, Any], prefix: str, errors: dict[str, str]) -> dict[str, str]:
    """``start`` and ``end`` of the form (``prefix`` + name), as ISO 8601 with the Berlin
    offset; a value that is not a time gets an error, an empty one is left to the API."""
    body = {}
    for name in ("start", "end"):
        raw = (values.get(prefix + name) or "").strip()
        if not raw:
            continue
        converted = _berlin_iso(raw)
        if converted is None:
            errors[prefix + name] = _("Bitte Datum und Uhrzeit angeben.")
        else:
            body[name] = converted
    return body


@blp.route("/<uuid:referral_id>/termine", methods=["GET", "POST"])
def book_appointment(referral_id: UUID) -> Page | Response:
    if request.method == "GET":
        return _kept_or_back(referral_id)
    values = forms.form_values()
    errors: dict[str, str] = {}
    body = _times(values, "", errors)
    body.update(forms.to_json(values, ("mode", "location", "note")))
    if errors:
        return _render_detail(referral_id, values=values, errors=errors, status=422)
    try:
        api.post(f"/api/v1/referrals/{referral_id}/appointments", body)
    except api.ApiError as exc:
        return _refused(referral_id, exc, values, {name: name for name in BOOK_FIELDS})
    flash(_("Der Termin ist gebucht."), "success")
    return _back(referral_id, "#termine")


@blp.route("/<uuid:referral_id>/termine/<uuid:appointment_id>", methods=["GET", "POST"])
def change_appointment(referral_id: UUID, appointment_id: UUID) -> Page | Response:
    """Move, cancel (with a reason) or record attendance, with the ETag of the appointment as
    the user saw it."""
    if request.method == "GET":
        return _kept_or_back(referral_id)
    values = forms.form_values()
    prefix = _appointment_prefix(appointment_id)
    action = values.get("action")
    errors: dict[str, str] = {}
    if action == "move":
        body: dict[str, Any] = _times(values, prefix, errors)
        open_form = prefix + "move"
        done = _("Der Termin ist verschoben.")
    elif action == "cancelled":
        body = {"status": "cancelled", "reason": (values.get(prefix + "reason") or "").strip()}
        open_form = prefix + "cancel"
        done = _("Der Termin ist abgesagt.")
    elif action in ATTENDANCE:
        body = {"status": action}
        open_form = None
        done = _("Erfasst: %(status)s.", status=i18n.label("appointment_status", action))
    else:
        abort(400)
    if errors:
        return _render_detail(referral_id, values=values, errors=errors, open_form=open_form,
                              status=422)
    try:
        api.patch(f"/api/v1/appointments/{appointment_id}", body,
                  etag=values.get("etag") or None)
    except api.ApiError as exc:
        if exc.status == 412:
            return _render_detail(
                referral_id, values=values, open_form=open_form, status=412,
                message=_("Der Termin wurde inzwischen geändert – bitte neu laden."))
        fields = {"start": prefix + "start", "end": prefix + "end", "reason": prefix + "reason"}
        return _refused(referral_id, exc, values, fields, open_form)
    flash(done, "success")
    return _back(referral_id, "#termine")
