"""How a reminder to the participant went (its channel: SMS, e-mail, none) and why one was not
sent (no address, no channel chosen, quiet hours …) tell something about the person's contact
data. The referral's sender is the person's own organisation and always sees it; the receiving
organisation only while the participant's consent to share their contact data with it
(category ``contact``) holds, as intake says at the moment of the request. If intake cannot
answer, the receiver does not see it (fail closed)."""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from buendnis_common import unit_of_work
from buendnis_common.auth import Principal
from buendnis_common.errors import ServiceUnavailable
from buendnis_common.service import ServiceRuntime
from notifications.appointment.models import Appointment
from notifications.reminder import service
from notifications.reminder.models import PARTICIPANT, Reminder

log = logging.getLogger(__name__)

CONTACT = "contact"


def may_see_contact(runtime: ServiceRuntime, principal: Principal,
                    appointment: Appointment) -> bool:
    """May ``principal`` see how reminders reached the participant? Asks intake (HTTP): call it
    with no transaction open."""
    if principal.org_alias == appointment.from_org:
        return True
    try:
        response = runtime.services.get(
            "intake", "/internal/consents/current",
            params={"participant_id": str(appointment.participant_id),
                    "recipient_org": appointment.to_org})
    except ServiceUnavailable:
        log.warning("intake unavailable: reminder channels not shown to the receiver")
        return False
    if response.status_code != 200:
        return False
    try:
        body = response.json()
        return body["valid"] is True and CONTACT in (body.get("data_categories") or [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def masked(view: dict, reminder: Reminder, *, show_contact: bool) -> dict:
    """The reminder's view without its channel and reason when the viewer may not see them."""
    if show_contact or reminder.recipient != PARTICIPANT:
        return view
    return {**view, "channel": None, "reason": None}


def of_appointment(*, runtime: ServiceRuntime, session: Session, principal: Principal,
                   appointment_id) -> tuple[list[Reminder], bool]:
    """The reminders of an appointment for one of its two organisations, the read audited,
    and whether the caller may see how they reached the participant (intake is asked with no
    transaction open: the audit entry is committed first)."""
    appointment, reminders = service.of_appointment(session=session, principal=principal,
                                                    appointment_id=appointment_id)
    runtime.audit(session, "reminder.list", participant_id=appointment.participant_id,
                  owner_org=appointment.from_org, record_id=appointment.id)
    unit_of_work.checkpoint()
    return reminders, may_see_contact(runtime, principal, appointment)
