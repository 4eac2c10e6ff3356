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
from referrals.appointment import service as appointments
from referrals.referral import consent_ends, fhir, schemas, service

blp = Blueprint("referrals", __name__, url_prefix="/api/v1/referrals", description="Referrals")


def _seen(runtime, session, referrals: list, principal) -> list[dict]:
    """The referrals as ``principal`` sees them, the consent of each received one checked with
    intake now (``consent_ends``). Call after the request's transaction is committed."""
    unconfirmed = consent_ends.check_for_receiver(runtime, session, referrals, principal)
    session.commit()
    views = []
    for referral in referrals:
        view = service.as_seen_by(referral, principal)
        if referral.id in unconfirmed and view["participant"] is not None:
            view["participant"] = {"pseudonym": view["participant"]["pseudonym"]}
        views.append(view)
    return views


@blp.route("")
class Referrals(MethodView):
    @blp.arguments(schemas.ReferralQuery, location="query")
    @blp.response(200, schemas.Referral(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """Referrals the caller's organisation sent or received, newest first."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        filters = service.ListFilters(
            box=query.get("box"), statuses=tuple(query.get("status") or ()),
            overdue=query.get("overdue"), participant_id=query.get("participant_id"),
            cancel_requested=query.get("cancel_requested"),
        )
        referrals, total = service.list_visible(
            session=session, principal=principal, filters=filters,
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        for referral in referrals:
            runtime.audit(session, "referral.list", participant_id=referral.participant_id,
                          owner_org=referral.from_org, record_id=referral.id)
        session.commit()
        return _seen(runtime, session, referrals, principal)

    @blp.arguments(schemas.ReferralCreate)
    @blp.response(201, schemas.Referral)
    def post(self, data):
        """Refer your participant to another organisation of the alliance; needs the
        participant's valid consent to share data with it (else 409)."""
        ctx = current_context()
        session = ctx.runtime.db.session
        principal = current_principal()
        referral = service.create(ctx=ctx, session=session, principal=principal, data=data)
        session.commit()
        consent_ends.confirm_after_commit(ctx.runtime, session, referral)
        return (service.as_seen_by(referral, principal), 201,
                {"Location": f"/api/v1/referrals/{referral.id}"})


@blp.route("/<uuid:referral_id>")
class ReferralById(MethodView):
    @blp.response(200, schemas.Referral)
    def get(self, referral_id: uuid.UUID):
        """The sender sees its full reference; the receiver the pseudonym and the consented
        categories only; anybody else 404."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        referral = service.get_visible(session=session, principal=principal,
                                       referral_id=referral_id)
        runtime.audit(session, "referral.read", participant_id=referral.participant_id,
                      owner_org=referral.from_org, record_id=referral.id)
        session.commit()
        return _seen(runtime, session, [referral], principal)[0]


@blp.route("/<uuid:referral_id>/fhir")
class ReferralFhir(MethodView):
    @blp.response(200, content_type=fhir.MEDIA_TYPE,
                  description="A FHIR R4 Bundle (type collection): Task, ServiceRequest, "
                              "Patient (pseudonym only), Consent, Appointments.")
    def get(self, referral_id: uuid.UUID):
        """The referral as FHIR R4 for its sender and receiver (anybody else 404): the Task's
        status is the referral's, as in HL7's closed-loop referral guide; only the pseudonym
        identifies the person."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        referral = service.get_visible(session=session, principal=principal,
                                       referral_id=referral_id)
        runtime.audit(session, "referral.fhir.read", participant_id=referral.participant_id,
                      owner_org=referral.from_org, record_id=referral.id)
        session.commit()
        consent_ends.check_for_receiver(runtime, session, [referral], principal)
        session.commit()
        booked = appointments.of_referral(session=session, referral=referral)
        body = fhir.bundle(referral, booked)
        return Response(json.dumps(body), status=200, mimetype=fhir.MEDIA_TYPE)


@blp.route("/<uuid:referral_id>/status")
class ReferralStatus(MethodView):
    @blp.arguments(schemas.StatusUpdate)
    @blp.response(200, schemas.Referral)
    def post(self, data, referral_id: uuid.UUID):
        """Move the referral on: the receiver accepts, rejects, starts, holds, completes or
        fails it; either party cancels. A move the state machine forbids answers 409 with the
        statuses you can set."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        referral = service.get_visible(session=session, principal=principal,
                                       referral_id=referral_id)
        service.change_status(runtime=runtime, session=session, principal=principal,
                              referral=referral, status=data["status"],
                              reason=data.get("reason"))
        if referral.is_closed:
            appointments.cancel_upcoming(runtime=runtime, session=session, referral=referral)
        session.commit()
        return _seen(runtime, session, [referral], principal)[0]


@blp.route("/<uuid:referral_id>/history")
class ReferralHistory(MethodView):
    @blp.response(200, schemas.HistoryEntry(many=True))
    def get(self, referral_id: uuid.UUID):
        """Every status the referral went through: by organisation, by user, at, reason."""
        runtime = current_runtime()
        session = runtime.db.session
        referral = service.get_visible(session=session, principal=current_principal(),
                                       referral_id=referral_id)
        runtime.audit(session, "referral.history.read", participant_id=referral.participant_id,
                      owner_org=referral.from_org, record_id=referral.id)
        session.commit()
        return referral.history


@blp.route("/<uuid:referral_id>/messages")
class ReferralMessages(MethodView):
    @blp.response(200, schemas.Message(many=True))
    def get(self, referral_id: uuid.UUID):
        """The sender's and the receiver's thread, oldest first."""
        runtime = current_runtime()
        session = runtime.db.session
        referral = service.get_visible(session=session, principal=current_principal(),
                                       referral_id=referral_id)
        thread = service.messages(session=session, referral=referral)
        runtime.audit(session, "referral.message.list", participant_id=referral.participant_id,
                      owner_org=referral.from_org, record_id=referral.id)
        session.commit()
        return thread

    @blp.arguments(schemas.MessageCreate)
    @blp.response(201, schemas.Message)
    def post(self, data, referral_id: uuid.UUID):
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        referral = service.get_visible(session=session, principal=principal,
                                       referral_id=referral_id)
        message = service.post_message(runtime=runtime, session=session, principal=principal,
                                       referral=referral, text=data["text"])
        session.commit()
        return message
