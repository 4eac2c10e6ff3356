"""The open offer directory: the offers their provider marked public, as Open Referral HSDS 3.0.

Anyone may read it, without a token (``PUBLIC_POLICY`` in ``buendnis_common.policy``; the gateway
serves it under ``/hsds/`` with its own per-address limit). That is why the filter on
``Offer.public`` sits here, in every query of this module, where the data is: whatever the
gateway does, an offer not marked public is never read by these views, and an unknown or
non-public id answers the same 404.

What an offer becomes: a ``service`` of an ``organization`` (the provider, from the realm's
directory, with a stable id derived from its alias), its languages, its municipality as a
``service_area``, its schedule text as a ``schedule``, its category and mode as ``attributes``.
What stays out: the offer's ``contact`` (free text that may name a person), who created it,
its capacity, and anything about participants or referrals. There are no locations: offers
carry a municipality, not an address. The blueprint is a plain Flask one, so these routes stay
out of the platform's API document (HSDS has its own).
"""
from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pycountry
from flask import Blueprint, jsonify, request
from sqlalchemy import func, or_, select

from buendnis_common.directory import organization, organizations
from buendnis_common.errors import NotFound, Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.settings import env_str
from referrals.offer.models import Offer

blp = Blueprint("hsds", __name__, url_prefix="/hsds")

HSDS_VERSION = "3.0"
# Stable ids for what has no uuid of its own (organisations, languages, areas …): uuid5 in this
# namespace, so that a directory that copies the data sees the same id every time.
NAMESPACE = uuid.UUID("5f0c3c1e-7a51-4a59-9c55-4a1f0e2b7d11")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
SEARCH_MAX = 100

CATEGORY_TAXONOMY = "buendnis-need-category"
MODE_TAXONOMY = "buendnis-offer-mode"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def organization_id(alias: str) -> str:
    return _id("organization", alias)


def _published():
    """The one condition every query here starts from."""
    return select(Offer).where(Offer.public.is_(True))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Unprocessable("hsds.whole_number", field=name, name=name) from None
    if not low <= value <= high:
        raise Unprocessable("hsds.out_of_range", field=name, name=name, low=low, high=high)
    return value


def _modified_after() -> datetime | None:
    raw = request.args.get("modified_after")
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable("hsds.modified_after_invalid", field="modified_after") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _search() -> str | None:
    text = (request.args.get("search") or "").strip()
    if len(text) > SEARCH_MAX:
        raise Unprocessable("hsds.search_too_long", field="search", max=SEARCH_MAX)
    return text or None


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page(items: list, total: int, page: int, per_page: int) -> dict:
    """HSDS's paging fields (its OpenAPI's ``Page``) around ``contents``."""
    total_pages = math.ceil(total / per_page) if total else 0
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(items),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not items,
        "contents": items,
    }


# -- objects ----------------------------------------------------------------------------------

def _organization(alias: str) -> dict:
    found = organization(alias)
    name = found.name if found else alias
    alliance = found.alliance if found and found.alliance else None
    description = (f"{name}: Mitglied im Bündnis {alliance}." if alliance
                   else f"{name}.")
    return {"id": organization_id(alias), "name": name, "description": description}


def _language(offer: Offer, code: str) -> dict:
    found = pycountry.languages.get(alpha_2=code)
    return {"id": _id("language", str(offer.id), code), "service_id": str(offer.id),
            "name": found.name if found else code, "code": code}


def _attribute(offer: Offer, taxonomy: str, code: str) -> dict:
    term_id = _id("taxonomy_term", taxonomy, code)
    return {
        "id": _id("attribute", str(offer.id), taxonomy),
        "link_id": str(offer.id),
        "link_type": taxonomy,
        "link_entity": "service",
        "taxonomy_term_id": term_id,
        "value": code,
        "taxonomy_term": {"id": term_id, "code": code, "name": code,
                          "description": f"{taxonomy}: {code}", "taxonomy": taxonomy},
    }


def service(offer: Offer, *, full: bool) -> dict:
    """An offer as an HSDS service; ``full`` adds its organisation and related objects (the
    list's ``service_list`` form has the one-to-one fields only)."""
    data: dict = {
        "id": str(offer.id),
        "organization_id": organization_id(offer.provider_org),
        "name": offer.title,
        "description": offer.description or "",
        "status": "active" if offer.active else "inactive",
        "last_modified": _iso(offer.updated_at),
    }
    if offer.min_age is not None:
        data["minimum_age"] = offer.min_age
    if offer.max_age is not None:
        data["maximum_age"] = offer.max_age
    if offer.eligible_residence_statuses:
        data["eligibility_description"] = (
            "Aufenthaltsstatus: " + ", ".join(offer.eligible_residence_statuses))
    if not full:
        return data
    data["organization"] = _organization(offer.provider_org)
    data["languages"] = [_language(offer, code) for code in offer.languages]
    data["service_areas"] = (
        [{"id": _id("service_area", str(offer.id)), "service_id": str(offer.id),
          "name": offer.municipality}] if offer.municipality else [])
    data["schedules"] = (
        [{"id": _id("schedule", str(offer.id)), "service_id": str(offer.id),
          "description": offer.schedule}] if offer.schedule else [])
    data["attributes"] = [_attribute(offer, CATEGORY_TAXONOMY, offer.category)]
    if offer.mode:
        data["attributes"].append(_attribute(offer, MODE_TAXONOMY, offer.mode))
    data["service_at_locations"] = []
    return data


# -- routes -----------------------------------------------------------------------------------

@blp.get("/")
def root():
    """HSDS's API information."""
    return jsonify({
        "version": HSDS_VERSION,
        "profile": env_str("HSDS_PROFILE_URL", "https://docs.openreferral.org/en/latest/"),
        "openapi_url": env_str(
            "HSDS_OPENAPI_URL",
            "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/openapi.json",
        ),
    })


@blp.get("/services")
def services():
    """The public offers, by name; ``search`` in name and description, ``modified_after``,
    ``organization_id``, ``page`` and ``per_page``."""
    session = current_runtime().db.session
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    query = _published()
    text = _search()
    if text:
        pattern = _like(text)
        query = query.where(or_(
            func.lower(Offer.title).like(pattern, escape="\\"),
            func.lower(func.coalesce(Offer.description, "")).like(pattern, escape="\\"),
        ))
    after = _modified_after()
    if after is not None:
        query = query.where(Offer.updated_at >= after)
    wanted_org = request.args.get("organization_id")
    if wanted_org:
        aliases = [alias for alias in organizations() if organization_id(alias) == wanted_org]
        query = query.where(Offer.provider_org.in_(aliases or ["-"]))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    offers = session.scalars(query.order_by(Offer.title, Offer.id)
                             .offset((page - 1) * per_page).limit(per_page))
    return jsonify(_page([service(offer, full=False) for offer in offers], total, page,
                         per_page))


@blp.get("/services/<service_id>")
def service_by_id(service_id: str):
    try:
        wanted = uuid.UUID(service_id)
    except ValueError:
        raise NotFound("hsds.no_such_service") from None
    offer = current_runtime().db.session.scalar(_published().where(Offer.id == wanted))
    if offer is None:
        raise NotFound("hsds.no_such_service")
    return jsonify(service(offer, full=True))


def _publishing_aliases(session) -> list[str]:
    """The providers with at least one public offer: only those are in the directory."""
    query = (select(Offer.provider_org).where(Offer.public.is_(True))
             .group_by(Offer.provider_org))
    return list(session.scalars(query))


def _organization_full(session, alias: str) -> dict:
    data = _organization(alias)
    offers = session.scalars(_published().where(Offer.provider_org == alias)
                             .order_by(Offer.title, Offer.id))
    data["services"] = [service(offer, full=False) for offer in offers]
    return data


@blp.get("/organizations")
def organizations_list():
    """The providers of public offers, by name; ``search`` in the name, ``modified_after`` (a
    public offer of theirs changed since), ``page`` and ``per_page``."""
    session = current_runtime().db.session
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    aliases = _publishing_aliases(session)
    after = _modified_after()
    if after is not None:
        changed = select(Offer.provider_org).where(Offer.public.is_(True),
                                                   Offer.updated_at >= after)
        aliases = sorted(set(aliases) & set(session.scalars(changed)))
    entries = [_organization(alias) for alias in aliases]
    text = _search()
    if text:
        entries = [entry for entry in entries if text.casefold() in entry["name"].casefold()]
    entries.sort(key=lambda entry: (entry["name"].casefold(), entry["id"]))
    total = len(entries)
    window = entries[(page - 1) * per_page: page * per_page]
    return jsonify(_page(window, total, page, per_page))


@blp.get("/organizations/<organization_ref>")
def organization_by_id(organization_ref: str):
    session = current_runtime().db.session
    for alias in _publishing_aliases(session):
        if organization_id(alias) == organization_ref:
            return jsonify(_organization_full(session, alias))
    raise NotFound("hsds.no_such_organization")
