"""The offer catalogue API: what each organisation of an alliance offers, and which offers fit
a participant. Views parse, call ``offer.service`` and serialise."""
from __future__ import annotations

import uuid

from flask.views import MethodView

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from referrals.offer import schemas, service

blp = Blueprint("offers", __name__, url_prefix="/api/v1/offers", description="Offer catalogue")


def etag_of(offer) -> dict:
    return {"id": str(offer.id), "version": offer.version}


@blp.route("")
class Offers(MethodView):
    @blp.arguments(schemas.OfferQuery, location="query")
    @blp.response(200, schemas.Offer(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """The alliance's catalogue; with ``participant_id``, the offers that fit that person,
        best first."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        filters = service.Filters(
            category=query.get("category"),
            language=query.get("language"),
            provider_org=query.get("provider_org"),
            active=query.get("active", True),
        )
        start, size = pagination_parameters.first_item, pagination_parameters.page_size
        participant_id = query.get("participant_id")
        if participant_id is None:
            offers, total = service.list_catalogue(
                session=session, principal=principal, filters=filters, offset=start, limit=size
            )
            pagination_parameters.item_count = total
            return offers
        fitting = service.matching_participant(
            runtime=runtime, session=session, principal=principal,
            participant_id=participant_id, filters=filters,
        )
        pagination_parameters.item_count = len(fitting)
        page = []
        for offer, fit in fitting[start:start + size]:
            offer.fit = fit
            page.append(offer)
        return page

    @blp.etag
    @blp.arguments(schemas.OfferCreate)
    @blp.response(201, schemas.Offer)
    def post(self, data):
        """Add an offer of the caller's organisation to the alliance's catalogue."""
        session = current_runtime().db.session
        offer = service.create(session=session, principal=current_principal(), data=data)
        blp.set_etag(etag_of(offer))
        return offer, 201, {"Location": f"/api/v1/offers/{offer.id}"}


@blp.route("/<uuid:offer_id>")
class OfferById(MethodView):
    @blp.etag
    @blp.response(200, schemas.Offer)
    def get(self, offer_id: uuid.UUID):
        """One offer of the alliance's catalogue, with its ``ETag`` for a change."""
        offer = service.get_visible(
            session=current_runtime().db.session, principal=current_principal(), offer_id=offer_id
        )
        blp.set_etag(etag_of(offer))
        return offer

    @blp.etag
    @blp.arguments(schemas.OfferUpdate)
    @blp.response(200, schemas.Offer)
    def patch(self, data, offer_id: uuid.UUID):
        """Change an offer of the caller's organisation; needs ``If-Match`` with its ``ETag``."""
        session = current_runtime().db.session
        principal = current_principal()
        offer = service.get_visible(session=session, principal=principal, offer_id=offer_id)
        service.require_provider(principal=principal, offer=offer)
        blp.check_etag(etag_of(offer))
        service.update(session=session, principal=principal, offer=offer, data=data)
        blp.set_etag(etag_of(offer))
        return offer
