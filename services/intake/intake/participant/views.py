"""The participants API: registering the young people an organisation works with, their needs,
erasure (Art. 17) and export (Art. 15). Views parse, call ``participant.service`` and
serialise."""
from __future__ import annotations

import uuid

from flask.views import MethodView

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from intake.participant import export, schemas, service

blp = Blueprint(
    "participants", __name__, url_prefix="/api/v1/participants",
    description="Participants: the young people an organisation works with. Each organisation "
    "sees only its own.",
)


def _own(participant_id: uuid.UUID):
    runtime = current_runtime()
    return runtime, runtime.db.session, service.get(
        session=runtime.db.session, principal=current_principal(), participant_id=participant_id
    )


def _caller() -> dict:
    runtime = current_runtime()
    return {"runtime": runtime, "session": runtime.db.session, "principal": current_principal()}


@blp.route("")
class Participants(MethodView):
    @blp.arguments(schemas.ParticipantQuery, location="query")
    @blp.response(200, schemas.Participant(many=True))
    @blp.paginate(page_size=25, max_page_size=100)
    def get(self, filters, pagination_parameters):
        """The caller's organisation's participants, newest first."""
        runtime = current_runtime()
        participants, total = service.list_read(
            runtime=runtime, session=runtime.db.session, principal=current_principal(),
            filters=filters, offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return participants

    @blp.etag
    @blp.arguments(schemas.ParticipantCreate)
    @blp.response(201, schemas.ParticipantCreated)
    def post(self, data):
        """Register a participant. The answer names organisations of the alliance that may
        already know the person, and nothing else about them."""
        runtime = current_runtime()
        participant = service.register_checked(
            runtime=runtime, session=runtime.db.session, principal=current_principal(), data=data
        )
        # The ETag of the participant as GET shows it, so that it serves a following PATCH.
        blp.set_etag(participant, schemas.Participant)
        return participant, 201, {"Location": f"/api/v1/participants/{participant.id}"}


@blp.route("/<uuid:participant_id>")
class ParticipantById(MethodView):
    @blp.etag
    @blp.response(200, schemas.Participant)
    def get(self, participant_id: uuid.UUID):
        """One of the caller's organisation's participants."""
        return service.read(**_caller(), participant_id=participant_id)

    @blp.etag
    @blp.arguments(schemas.ParticipantUpdate)
    @blp.response(200, schemas.Participant)
    def patch(self, data, participant_id: uuid.UUID):
        """Change fields of the participant; send the ETag of your copy as If-Match."""
        runtime, session, participant = _own(participant_id)
        blp.check_etag(participant, schemas.Participant)
        service.update(runtime=runtime, session=session, participant=participant, data=data)
        return participant

    @blp.response(204)
    def delete(self, participant_id: uuid.UUID):
        """Erase the participant's personal data (DSGVO Art. 17), in every service."""
        runtime, session, participant = _own(participant_id)
        service.erase(runtime=runtime, session=session, participant=participant)


@blp.route("/<uuid:participant_id>/export")
class ParticipantExport(MethodView):
    @blp.response(200)
    def get(self, participant_id: uuid.UUID):
        """Everything the platform holds about the person (DSGVO Art. 15)."""
        return export.for_caller(**_caller(), participant_id=participant_id)


@blp.route("/<uuid:participant_id>/needs")
class Needs(MethodView):
    @blp.response(200, schemas.Need(many=True))
    def get(self, participant_id: uuid.UUID):
        """The participant's needs."""
        return service.read(**_caller(), participant_id=participant_id,
                            action="need.list").needs

    @blp.arguments(schemas.NeedCreate)
    @blp.response(201, schemas.Need)
    def post(self, data, participant_id: uuid.UUID):
        """Record a need of the participant (a category, such as housing, and a note)."""
        runtime, session, participant = _own(participant_id)
        need = service.add_need(runtime=runtime, session=session, participant=participant,
                                data=data)
        return need


@blp.route("/<uuid:participant_id>/needs/<uuid:need_id>")
class NeedById(MethodView):
    @blp.etag
    @blp.response(200, schemas.Need)
    def get(self, participant_id: uuid.UUID, need_id: uuid.UUID):
        """One need of the participant."""
        return service.read_need(**_caller(), participant_id=participant_id, need_id=need_id)

    @blp.etag
    @blp.arguments(schemas.NeedUpdate)
    @blp.response(200, schemas.Need)
    def patch(self, data, participant_id: uuid.UUID, need_id: uuid.UUID):
        """Update a need's status (open, in_progress, met, dropped) or note."""
        runtime, session, participant = _own(participant_id)
        need = service.get_need(session=session, participant=participant, need_id=need_id)
        blp.check_etag(need, schemas.Need)
        service.update_need(runtime=runtime, session=session, participant=participant,
                            need=need, data=data)
        return need
