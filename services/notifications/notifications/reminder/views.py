"""The reminders API: what was planned and sent for an appointment, for the referral's two
organisations, so a case worker can see whether the participant was reminded."""
from __future__ import annotations

from flask.views import MethodView

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from notifications.delivery.models import SCHEDULED, SENDING
from notifications.reminder import schemas, visibility
from notifications.reminder.models import Reminder

blp = Blueprint("reminders", __name__, url_prefix="/api/v1/reminders",
                description="Appointment reminders, for the referral's two organisations.")

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def offset_text(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def view(reminder: Reminder) -> dict:
    return {
        "id": reminder.id,
        "appointment_id": reminder.appointment_id,
        "kind": reminder.kind,
        "recipient": reminder.recipient,
        "offset": offset_text(reminder.offset_seconds),
        "offset_seconds": reminder.offset_seconds,
        "due_at": reminder.due_at,
        "channel": reminder.channel,
        # Being sent this very moment is still "scheduled" to the outside.
        "status": SCHEDULED if reminder.status == SENDING else reminder.status,
        "sent_at": reminder.sent_at,
        "reason": reminder.cancel_reason,
        "attempts": reminder.attempts,
        "confirmed": reminder.confirmed,
    }


@blp.route("")
class Reminders(MethodView):
    @blp.arguments(schemas.ReminderQuery, location="query")
    @blp.response(200, schemas.Reminder(many=True))
    def get(self, query):
        """The reminders of an appointment and the notices about it; 404 unless the caller's
        organisation sent or received the referral. The receiving organisation sees how a
        reminder reached the participant (``channel``, ``reason``) only while the participant's
        consent to share contact data with it holds; otherwise both are null."""
        runtime = current_runtime()
        reminders, shown = visibility.of_appointment(
            runtime=runtime, session=runtime.db.session, principal=current_principal(),
            appointment_id=query["appointment_id"])
        return [visibility.masked(view(reminder), reminder, show_contact=shown)
                for reminder in reminders]
