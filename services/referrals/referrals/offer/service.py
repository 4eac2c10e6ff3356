"""The offer catalogue: every member of an alliance reads it, only the provider changes an offer.

Data access never commits; the view owns the transaction.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.db import utcnow
from buendnis_common.errors import Forbidden, NotFound, Unprocessable
from buendnis_common.service import ServiceRuntime
from referrals import intake
from referrals.intake import Profile
from referrals.offer.models import Offer, OfferLanguage
from referrals.permissions import require_catalogue_editor


@dataclass
class Fit:
    score: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    language: str | None = None
    provider_org: str | None = None
    active: bool = True


def _catalogue(principal: Principal, filters: Filters) -> Select:
    # A principal without an alliance (the ministry) has no catalogue: alliance = NULL matches
    # nothing.
    query = select(Offer).where(
        Offer.alliance == principal.alliance, Offer.active == filters.active
    )
    if filters.category:
        query = query.where(Offer.category == filters.category)
    if filters.provider_org:
        query = query.where(Offer.provider_org == filters.provider_org)
    if filters.language:
        query = query.where(
            select(OfferLanguage.offer_id)
            .where(OfferLanguage.offer_id == Offer.id, OfferLanguage.code == filters.language)
            .exists()
        )
    return query


def list_catalogue(
    *, session: Session, principal: Principal, filters: Filters, offset: int, limit: int
) -> tuple[list[Offer], int]:
    query = _catalogue(principal, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    offers = session.scalars(
        query.order_by(Offer.category, Offer.title, Offer.id).offset(offset).limit(limit)
    )
    return list(offers), total


def fit(offer: Offer, profile: Profile) -> Fit | None:
    """How well an offer fits a participant; ``None`` when it does not fit at all.

    It must serve one of the person's open needs, admit their residence status and age, and have
    a free place. Among those, an offer in one of the person's languages, in their municipality,
    or explicitly meant for their residence status or age ranks higher.
    """
    if offer.category not in profile.open_needs:
        return None
    result = Fit(reasons=[f"need:{offer.category}"])
    statuses = offer.eligible_residence_statuses or []
    if statuses:
        if profile.residence_status not in statuses:
            return None
        result.score += 1
        result.reasons.append(f"residence_status:{profile.residence_status}")
    if profile.age is not None and (offer.min_age is not None or offer.max_age is not None):
        if offer.min_age is not None and profile.age < offer.min_age:
            return None
        if offer.max_age is not None and profile.age > offer.max_age:
            return None
        result.score += 1
        result.reasons.append("age")
    if offer.capacity is not None and offer.capacity <= 0:
        return None
    languages = list(offer.languages)
    shared = [code for code in profile.languages if code in languages]
    if shared:
        result.score += 3
        result.reasons.extend(f"language:{code}" for code in shared)
    elif not languages:
        result.score += 1
    if (
        offer.municipality
        and profile.municipality
        and offer.municipality.strip().casefold() == profile.municipality.strip().casefold()
    ):
        result.score += 2
        result.reasons.append("municipality")
    return result


def matching(
    *, session: Session, principal: Principal, profile: Profile, filters: Filters
) -> list[tuple[Offer, Fit]]:
    """The active offers of the caller's alliance that fit the participant, best first."""
    query = _catalogue(principal, filters).where(Offer.category.in_(profile.open_needs or ["-"]))
    fitting = []
    for offer in session.scalars(query):
        offer_fit = fit(offer, profile)
        if offer_fit is not None:
            fitting.append((offer, offer_fit))
    fitting.sort(key=lambda pair: (-pair[1].score, pair[0].title.casefold(), str(pair[0].id)))
    return fitting


def get_visible(*, session: Session, principal: Principal, offer_id: uuid.UUID) -> Offer:
    """An offer of the caller's alliance; another alliance's answers 404 like a missing one."""
    offer = session.get(Offer, offer_id)
    if offer is None or principal.alliance is None or offer.alliance != principal.alliance:
        raise NotFound("offer.not_found")
    return offer


def create(*, session: Session, principal: Principal, data: dict) -> Offer:
    require_catalogue_editor(principal, "add offers to the catalogue")
    languages = data.pop("languages", None) or []
    now = utcnow()
    offer = Offer(
        id=uuid.uuid4(),
        provider_org=principal.org_alias,
        alliance=principal.alliance,
        created_by=principal.username,
        created_at=now,
        updated_at=now,
        eligible_residence_statuses=data.pop("eligible_residence_statuses", None) or [],
        active=data.pop("active", True),
        public=data.pop("public", False),
        **data,
    )
    offer.languages.extend(dict.fromkeys(languages))
    session.add(offer)
    return offer


def require_provider(*, principal: Principal, offer: Offer) -> None:
    """Only the providing organisation changes its offers. Its partners in the alliance read
    the offer, so its existence is no secret to them: they get 403, not 404."""
    require_catalogue_editor(principal, "change offers")
    if offer.provider_org != principal.org_alias:
        raise Forbidden("offer.provider_only")


def update(*, session: Session, principal: Principal, offer: Offer, data: dict) -> Offer:
    require_provider(principal=principal, offer=offer)
    low = data.get("min_age", offer.min_age)
    high = data.get("max_age", offer.max_age)
    if low is not None and high is not None and low > high:
        raise Unprocessable("offer.max_age_below_min_age", field="max_age")
    if "languages" in data:
        wanted = list(dict.fromkeys(data.pop("languages") or []))
        offer.language_rows[:] = [row for row in offer.language_rows if row.code in wanted]
        have = {row.code for row in offer.language_rows}
        offer.language_rows.extend(OfferLanguage(code=code) for code in wanted if code not in have)
    if "eligible_residence_statuses" in data:
        data["eligible_residence_statuses"] = data["eligible_residence_statuses"] or []
    for name, value in data.items():
        setattr(offer, name, value)
    offer.updated_at = utcnow()
    session.flush()
    return offer


def matching_participant(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                         participant_id: uuid.UUID, filters: Filters) -> list[tuple[Offer, Fit]]:
    """The offers that fit the caller's participant, best first, as intake describes the
    person now (no names); the read is audited. Another organisation's participant is 404."""
    profile = None
    if principal.org_alias and principal.alliance:
        profile = intake.profile(runtime, participant_id=participant_id,
                                 owner_org=principal.org_alias)
    if profile is None:
        raise NotFound("participant.not_found")
    fitting = matching(session=session, principal=principal, profile=profile, filters=filters)
    runtime.audit(session, "offer.match", participant_id=participant_id)
    return fitting
