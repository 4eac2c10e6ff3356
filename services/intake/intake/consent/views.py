"""The consents API: a participant's consent to share data with another organisation, which
every referral and reminder checks at the moment it uses the data."""
from __future__ import annotations

import uuid

from flask.views import MethodView

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from intake.consent import schemas, service
from intake.participant import service as participants

blp = Blueprint(
    "consents", __name__, url_prefix="/api/v1/participants/<uuid:participant_id>/consents",
    description="The participant's consents to share data with another organisation.",
)


def _own(participant_id: uuid.UUID):
    runtime = current_runtime()
    return runtime, runtime.db.session, participants.get(
        session=runtime.db.session, principal=current_principal(), participant_id=participant_id
    )


@blp.route("")
class Consents(MethodView):
    @blp.response(200, schemas.Consent(many=True))
    def get(self, participant_id: uuid.UUID):
        """Every consent recorded for the participant, withdrawn and expired ones included."""
        runtime = current_runtime()
        return service.list_read(runtime=runtime, session=runtime.db.session,
                                 principal=current_principal(), participant_id=participant_id)

    @blp.arguments(schemas.ConsentCreate)
    @blp.response(201, schemas.Consent)
    def post(self, data, participant_id: uuid.UUID):
        """Record the participant's consent to share the given categories with one
        organisation of the alliance, for referrals, until ``valid_until``."""
        runtime, session, participant = _own(participant_id)
        consent = service.grant(runtime=runtime, session=session, principal=current_principal(),
                                participant=participant, data=data)
        return consent, 201, {
            "Location": f"/api/v1/participants/{participant.id}/consents/{consent.id}"
        }


@blp.route("/<uuid:consent_id>")
class ConsentById(MethodView):
    @blp.response(200, schemas.Consent)
    def get(self, participant_id: uuid.UUID, consent_id: uuid.UUID):
        """One consent of the participant."""
        runtime = current_runtime()
        return service.read(runtime=runtime, session=runtime.db.session,
                            principal=current_principal(), participant_id=participant_id,
                            consent_id=consent_id)

    @blp.response(204)
    def delete(self, participant_id: uuid.UUID, consent_id: uuid.UUID):
        """Withdraw the consent: nothing more is shared under it, from now on."""
        runtime, session, participant = _own(participant_id)
        consent = service.get(session=session, participant=participant, consent_id=consent_id)
        service.withdraw(runtime=runtime, session=session, principal=current_principal(),
                         participant=participant, consent=consent)
