from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from buendnis_common.service import current_runtime
from buendnis_common.web import current_principal
from intake.participant import schemas, service

blp = Blueprint(
    "participants", __name__, url_prefix="/api/v1/participants", description="Participants"
)


@blp.route("")
class Participants(MethodView):
    @blp.response(200, schemas.Participant(many=True))
    def get(self):
        """The caller's organisation's participants."""
        runtime = current_runtime()
        session = runtime.db.session
        participants = service.list_own(session=session, principal=current_principal())
        for participant in participants:
            runtime.audit(session, "participant.list", participant_id=participant.id)
        session.commit()
        return participants

    @blp.arguments(schemas.ParticipantCreate)
    @blp.response(201, schemas.Participant)
    def post(self, data):
        """Register a participant."""
        runtime = current_runtime()
        session = runtime.db.session
        participant = service.register(
            runtime=runtime, session=session, principal=current_principal(), data=data
        )
        session.commit()
        return participant, 201, {"Location": f"/api/v1/participants/{participant.id}"}


@blp.route("/<uuid:participant_id>")
class ParticipantById(MethodView):
    @blp.response(200, schemas.Participant)
    def get(self, participant_id: uuid.UUID):
        runtime = current_runtime()
        session = runtime.db.session
        participant = service.get(
            session=session, principal=current_principal(), participant_id=participant_id
        )
        runtime.audit(session, "participant.read", participant_id=participant.id)
        session.commit()
        return participant

    @blp.response(204)
    def delete(self, participant_id: uuid.UUID):
        """Erase the participant's personal data (DSGVO Art. 17)."""
        runtime = current_runtime()
        session = runtime.db.session
        service.erase(
            runtime=runtime,
            session=session,
            principal=current_principal(),
            participant_id=participant_id,
        )
        session.commit()
