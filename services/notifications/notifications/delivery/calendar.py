"""The iCalendar attachment (RFC 5545/5546) that puts the appointment in the participant's
calendar and keeps it there in step: the same UID for the appointment's whole life, a SEQUENCE
that grows with every move and the cancellation, ``METHOD:CANCEL`` when it is called off."""
from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//Buendnis//Reminders//DE"


def appointment_calendar(*, uid: str, sequence: int, start: datetime, end: datetime,
                         summary: str, cancelled: bool, organizer: str, attendee: str | None,
                         language: str, stamp: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    # In UTC: every calendar program reads it; it shows the time in the reader's own zone.
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("summary", vText(summary), parameters={"LANGUAGE": language})
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer_name, organizer_address = parseaddr(organizer)
    organizer_value = vCalAddress(f"mailto:{organizer_address}")
    if organizer_name:
        organizer_value.params["CN"] = vText(organizer_name)
    event.add("organizer", organizer_value)
    if attendee:
        attendee_value = vCalAddress(f"mailto:{attendee}")
        attendee_value.params["ROLE"] = vText("REQ-PARTICIPANT")
        attendee_value.params["RSVP"] = vText("FALSE")
        event.add("attendee", attendee_value)
    calendar.add_component(event)
    return calendar.to_ical()
