"""The referrals API: a case worker refers a participant to another organisation of the
alliance and both sides follow it through its statuses and thread. Views parse, call
``referral.service`` and serialise; the rules live there."""
from __future__ import annotations

import uuid

from flask import Response, json
from flask.views import MethodView

from buendnis_common.context import current_context
from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from referrals.referral import fhir, schemas, service, use_cases

blp = Blueprint("referrals", __name__, url_prefix="/api/v1/referrals", description="Referrals")


def _args() -> dict:
    runtime = current_runtime()
    return {"runtime": runtime, "session": runtime.db.session, "principal": current_principal()}


@blp.route("")
class Referrals(MethodView):
    @blp.arguments(schemas.ReferralQuery, location="query")
    @blp.response(200, schemas.Referral(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """Referrals the caller's organisation sent or received, newest first."""
        filters = service.ListFilters(
            box=query.get("box"), statuses=tuple(query.get("status") or ()),
            overdue=query.get("overdue"), participant_id=query.get("participant_id"),
            cancel_requested=query.get("cancel_requested"),
        )
        views, total = use_cases.list_seen(
            **_args(), filters=filters,
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return views

    @blp.arguments(schemas.ReferralCreate)
    @blp.response(201, schemas.Referral)
    def post(self, data):
        """Refer your participant to another organisation of the alliance; needs the
        participant's valid consent to share data with it (else 409)."""
        ctx = current_context()
        view = use_cases.create(ctx=ctx, session=ctx.runtime.db.session,
                                principal=current_principal(), data=data)
        return view, 201, {"Location": f"/api/v1/referrals/{view['id']}"}


@blp.route("/<uuid:referral_id>")
class ReferralById(MethodView):
    @blp.response(200, schemas.Referral)
    def get(self, referral_id: uuid.UUID):
        """The sender sees its full reference; the receiver the pseudonym and the consented
        categories only; anybody else 404."""
        return use_cases.read(**_args(), referral_id=referral_id)


@blp.route("/<uuid:referral_id>/fhir")
class ReferralFhir(MethodView):
    @blp.response(200, content_type=fhir.MEDIA_TYPE,
                  description="A FHIR R4 Bundle (type collection): Task, ServiceRequest, "
                              "Patient (pseudonym only), Consent, Appointments.")
    def get(self, referral_id: uuid.UUID):
        """The referral as FHIR R4 for its sender and receiver (anybody else 404): the Task's
        status is the referral's, as in HL7's closed-loop referral guide; only the pseudonym
        identifies the person."""
        body = use_cases.fhir_bundle(**_args(), referral_id=referral_id)
        return Response(json.dumps(body), status=200, mimetype=fhir.MEDIA_TYPE)


@blp.route("/<uuid:referral_id>/status")
class ReferralStatus(MethodView):
    @blp.arguments(schemas.StatusUpdate)
    @blp.response(200, schemas.Referral)
    def post(self, data, referral_id: uuid.UUID):
        """Move the referral on: the receiver accepts, rejects, starts, holds, completes or
        fails it; either party cancels. A move the state machine forbids answers 409 with the
        statuses you can set; closing it cancels its upcoming appointments."""
        return use_cases.change_status(**_args(), referral_id=referral_id,
                                       status=data["status"], reason=data.get("reason"))


@blp.route("/<uuid:referral_id>/history")
class ReferralHistory(MethodView):
    @blp.response(200, schemas.HistoryEntry(many=True))
    def get(self, referral_id: uuid.UUID):
        """Every status the referral went through: by organisation, by user, at, reason."""
        return use_cases.history(**_args(), referral_id=referral_id)


@blp.route("/<uuid:referral_id>/messages")
class ReferralMessages(MethodView):
    @blp.response(200, schemas.Message(many=True))
    def get(self, referral_id: uuid.UUID):
        """The sender's and the receiver's thread, oldest first."""
        return use_cases.messages(**_args(), referral_id=referral_id)

    @blp.arguments(schemas.MessageCreate)
    @blp.response(201, schemas.Message)
    def post(self, data, referral_id: uuid.UUID):
        """Write in the thread; the other side is told in its inbox."""
        return use_cases.post_message(**_args(), referral_id=referral_id, text=data["text"])
