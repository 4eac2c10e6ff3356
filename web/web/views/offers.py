"""The alliance's offer catalogue, and the own organisation's offers to edit.

Every member of an alliance reads the catalogue; case workers and coordinators add and change
their own organisation's offers. The API decides; the pages only leave out controls that the
API would refuse anyway.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import api, forms
from ..auth import current_user, has_role

blp = Blueprint("offers", __name__, url_prefix="/angebote")

# The form's fields are the API's (OfferCreate/OfferUpdate), so its field errors land beside them.
FIELDS = ("title", "category", "description", "languages", "municipality", "mode",
          "eligible_residence_statuses", "min_age", "max_age", "capacity", "schedule", "contact",
          "active", "public")
MULTI = ("languages", "eligible_residence_statuses", "active", "public")
SWITCHES = ("active", "public")
NUMBERS = ("min_age", "max_age", "capacity")
EDITORS = ("case_worker", "coordinator")
PAGE_SIZE = 20


def _organisations() -> dict[str, str]:
    """Alias → name of the organisations of the user's alliance."""
    return {org["alias"]: org["name"] for org in api.organizations()}


def _own_alias() -> str | None:
    return (current_user().get("organization") or {}).get("alias")


def may_edit(offer: dict[str, Any]) -> bool:
    """Whether the API would let this user change ``offer``: an editor of the providing
    organisation."""
    return has_role(*EDITORS) and offer.get("provider_org") == _own_alias()


@blp.get("/")
def index():
    filters = {
        "category": request.args.get("category", ""),
        "language": request.args.get("language", ""),
        "provider_org": request.args.get("provider_org", ""),
        "active": request.args.get("active", "true"),
    }
    catalogue = api.get("/api/v1/offers", page=request.args.get("page", 1), page_size=PAGE_SIZE,
                        **filters)
    own_alias = _own_alias()
    # The own organisation's offers, the inactive ones too: they are the ones to look after.
    own = []
    if own_alias:
        for active in ("true", "false"):
            own += api.get("/api/v1/offers", provider_org=own_alias, active=active,
                           page_size=100).body or []
    organisations = _organisations()
    return render_template(
        "offers/index.html",
        offers=catalogue.body or [],
        pagination=catalogue.pagination,
        own_offers=own,
        filters=filters,
        organisations=organisations,
        may_edit=may_edit,
        editor=has_role(*EDITORS),
    )


@blp.get("/<uuid:offer_id>")
def detail(offer_id: UUID):
    offer = api.get(f"/api/v1/offers/{offer_id}").body
    return render_template("offers/detail.html", offer=offer, organisations=_organisations(),
                           editable=may_edit(offer))


def _body(values: dict[str, Any], *, for_update: bool) -> dict[str, Any]:
    """The form as the API's JSON. Numbers that are numbers become integers; anything else goes
    as typed, so that the API's own message explains what is wrong with it."""
    values = dict(values)
    for name in NUMBERS:
        text = str(values.get(name) or "").strip()
        if text.isdigit():
            values[name] = int(text)
    values.setdefault("languages", [])
    values.setdefault("eligible_residence_statuses", [])
    body = forms.to_json(values, tuple(f for f in FIELDS if f not in SWITCHES),
                         keep_empty=for_update)
    # An unticked checkbox is not sent at all: its absence means "no".
    for name in SWITCHES:
        body[name] = "true" in (values.get(name) or [])
    return body


def _field_errors(exc: api.ApiError) -> tuple[dict[str, str], str]:
    """The API's field errors by form field (``languages.1`` → ``languages``), and its message
    with any error that belongs to no field (shown at the top of the form)."""
    errors: dict[str, str] = {}
    message = exc.localized_message
    for name, text in exc.field_errors().items():
        field = name if name in FIELDS else name.split(".")[0]
        if field not in FIELDS:
            message = f"{message} {text}"
            continue
        errors[field] = f"{errors[field]} {text}" if field in errors else text
    return errors, message


def _require_editor() -> None:
    # The API lets case workers and coordinators add offers (403 for others): say so before
    # the form is filled in rather than after.
    if not has_role(*EDITORS):
        raise api.ApiError(403, _("Angebote anlegen und ändern können Fallbearbeitende und "
                                  "Koordinierende."))


@blp.route("/neu", methods=["GET", "POST"])
def new():
    _require_editor()
    values = forms.form_values(multi=MULTI)
    if request.method == "GET" and not values:
        values = {"active": ["true"]}
    errors: dict[str, str] = {}
    message = None
    if request.method == "POST":
        try:
            created = api.post("/api/v1/offers", _body(values, for_update=False)).body
        except api.ApiError as exc:
            if exc.status != 422:
                raise
            errors, message = _field_errors(exc)
        else:
            flash(_("Das Angebot ist im Katalog gespeichert."), "success")
            return redirect(url_for("offers.detail", offer_id=created["id"]))
    return render_template("offers/form.html", offer=None, values=values, errors=errors,
                           message=message, etag=None), 422 if message else 200


def _as_form(offer: dict[str, Any]) -> dict[str, Any]:
    values = forms.flatten(offer)
    values["active"] = ["true"] if offer.get("active") else []
    values["public"] = ["true"] if offer.get("public") else []
    values["languages"] = offer.get("languages") or []
    values["eligible_residence_statuses"] = offer.get("eligible_residence_statuses") or []
    return values


@blp.route("/<uuid:offer_id>/bearbeiten", methods=["GET", "POST"])
def edit(offer_id: UUID):
    path = f"/api/v1/offers/{offer_id}"
    if request.method == "GET":
        current = api.get(path)
        offer = current.body
        if not may_edit(offer):
            # The API reads the offer to every member of the alliance but lets only its
            # provider change it (403): say so now rather than after the form is filled in.
            raise api.ApiError(403, _("Nur die Organisation, die dieses Angebot anbietet, "
                                      "kann es ändern."))
        # A form kept over a new sign-in carries the ETag of the version it was begun on.
        kept = forms.form_values(multi=MULTI)
        etag = kept.pop("etag", "") or current.etag
        return render_template("offers/form.html", offer=offer,
                               values=kept or _as_form(offer), errors={}, message=None,
                               etag=etag)
    values = forms.form_values(multi=MULTI)
    etag = values.pop("etag", "") or None
    try:
        offer = api.patch(path, _body(values, for_update=True), etag=etag).body
    except api.ApiError as exc:
        if exc.status == 412:
            # Someone changed the offer since this form was opened: their change must not be
            # overwritten unseen.
            message = _("Das Angebot wurde inzwischen geändert. Bitte laden Sie die Seite "
                        "neu und tragen Sie Ihre Änderungen erneut ein.")
            return render_template("offers/form.html", offer={"id": str(offer_id)},
                                   values=values, errors={}, message=message, etag=etag,
                                   stale=True), 412
        if exc.status != 422:
            raise
        errors, message = _field_errors(exc)
        return render_template("offers/form.html", offer={"id": str(offer_id)}, values=values,
                               errors=errors, message=message, etag=etag), 422
    flash(_("Die Änderungen am Angebot sind gespeichert."), "success")
    return redirect(url_for("offers.detail", offer_id=offer["id"]))
