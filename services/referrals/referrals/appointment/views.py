"""The appointments API: appointments booked on a referral by its sender or receiver, which
the notifications service turns into reminders. Views parse, call ``appointment.service`` and
serialise."""
from __future__ import annotations

import uuid

from flask.views import MethodView

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from referrals.appointment import schemas, service, use_cases

blp = Blueprint("appointments", __name__, url_prefix="/api/v1", description="Appointments")


def etag_of(appointment) -> dict:
    return {"id": str(appointment.id), "version": appointment.version}


@blp.route("/referrals/<uuid:referral_id>/appointments")
class ReferralAppointments(MethodView):
    @blp.response(200, schemas.Appointment(many=True))
    def get(self, referral_id: uuid.UUID):
        """The referral's appointments, earliest first."""
        runtime = current_runtime()
        return use_cases.of_referral(runtime=runtime, session=runtime.db.session,
                                     principal=current_principal(), referral_id=referral_id)

    @blp.etag
    @blp.arguments(schemas.AppointmentCreate)
    @blp.response(201, schemas.Appointment)
    def post(self, data, referral_id: uuid.UUID):
        """Book an appointment (sender or receiver); not on a closed referral (409)."""
        runtime = current_runtime()
        appointment = use_cases.book(runtime=runtime, session=runtime.db.session,
                                     principal=current_principal(), referral_id=referral_id,
                                     data=data)
        blp.set_etag(etag_of(appointment))
        return appointment, 201, {"Location": f"/api/v1/appointments/{appointment.id}"}


@blp.route("/appointments")
class Appointments(MethodView):
    @blp.arguments(schemas.AppointmentQuery, location="query")
    @blp.response(200, schemas.Appointment(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """The appointments on referrals the caller's organisation sent or received, from now
        (or ``from``) on, earliest first."""
        runtime = current_runtime()
        found, total = use_cases.list_visible(
            runtime=runtime, session=runtime.db.session, principal=current_principal(),
            start=query.get("from_"), end=query.get("to"), status=query.get("status"),
            participant_response=query.get("participant_response"),
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return found


@blp.route("/appointments/<uuid:appointment_id>")
class AppointmentById(MethodView):
    @blp.etag
    @blp.response(200, schemas.Appointment)
    def get(self, appointment_id: uuid.UUID):
        """One appointment of a referral the caller's organisation sent or received."""
        runtime = current_runtime()
        appointment = use_cases.read(runtime=runtime, session=runtime.db.session,
                                     principal=current_principal(),
                                     appointment_id=appointment_id)
        blp.set_etag(etag_of(appointment))
        return appointment

    @blp.etag
    @blp.arguments(schemas.AppointmentUpdate)
    @blp.response(200, schemas.Appointment)
    def patch(self, data, appointment_id: uuid.UUID):
        """Move it, cancel it with a reason, or record attendance; needs ``If-Match``."""
        runtime = current_runtime()
        session = runtime.db.session
        principal = current_principal()
        appointment, referral = service.get_visible(
            session=session, principal=principal, appointment_id=appointment_id
        )
        blp.check_etag(etag_of(appointment))
        service.update(runtime=runtime, session=session, principal=principal,
                       appointment=appointment, referral=referral, data=data)
        blp.set_etag(etag_of(appointment))
        return appointment
