"""The e-mail's parts written without the general-purpose builders (a burst of reminders is CPU
bound): the calendar attachment is byte for byte what the ``icalendar`` package writes for the
same event, and the e-mail reads back as the same message the ``email`` package builds."""
from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.policy import compat32

import pytest
from icalendar import Calendar, Event, vCalAddress, vText

from notifications.delivery import mail
from notifications.delivery.calendar import PRODID, appointment_calendar
from notifications.messages.render import render

START = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


def with_icalendar(*, uid, sequence, start, end, summary, cancelled, organizer, attendee,
                   language, stamp) -> bytes:
    """The attachment as it was built before, with the package's objects."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("summary", vText(summary), parameters={"LANGUAGE": language})
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    name, address = email.utils.parseaddr(organizer)
    organizer_value = vCalAddress(f"mailto:{address}")
    if name:
        organizer_value.params["CN"] = vText(name)
    event.add("organizer", organizer_value)
    if attendee:
        attendee_value = vCalAddress(f"mailto:{attendee}")
        attendee_value.params["ROLE"] = vText("REQ-PARTICIPANT")
        attendee_value.params["RSVP"] = vText("FALSE")
        event.add("attendee", attendee_value)
    calendar.add_component(event)
    return calendar.to_ical()


SUMMARIES = [
    "Termin: Caritasverband Leverkusen",
    "Termin bei Caritas; Leverkusen, e.V. \\ mit Rückfrage " + "x" * 90,
    "موعد لدى كاريتاس ليفركوزن — " * 4,
    "Зустріч у Caritasverband Leverkusen e.V., Leverkusen-Opladen, Kölner Straße 12",
    "a" * 72 + "\\;" + "b" * 200,
    "Zeile eins\nZeile zwei",
]


@pytest.mark.parametrize("summary", SUMMARIES)
@pytest.mark.parametrize("cancelled", [False, True])
@pytest.mark.parametrize("organizer,attendee", [
    ("Bündnis Leverkusen <noreply@buendnis.example>", "amira@example.org"),
    ('"Bündnis; \\"Leverkusen\\" ^2" <noreply@buendnis.example>', None),
    ("noreply@buendnis.example", "x" * 60 + "@example.org"),
])
def test_the_calendar_is_what_icalendar_writes(summary, cancelled, organizer, attendee):
    values = dict(uid="appointment-4711@buendnis", sequence=3, start=START,
                  end=START + timedelta(minutes=90), summary=summary, cancelled=cancelled,
                  organizer=organizer, attendee=attendee, language="ar",
                  stamp=datetime(2031, 3, 1, 8, 5, 7, tzinfo=timezone(timedelta(hours=1))))
    ours = appointment_calendar(**values)
    assert ours == with_icalendar(**values)
    event = Calendar.from_ical(ours).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == summary
    assert event["DTSTART"].dt == START


def parts(raw: bytes) -> list[tuple]:
    """What a mail program reads: headers (boundaries aside), each part's type, parameters,
    disposition and decoded content."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    read = [tuple((name, str(value)) for name, value in message.items()
                  if name != "Content-Type")]
    for part in message.walk():
        params = dict(part.get_params() or [])
        params.pop("boundary", None)
        content = part.get_content() if not part.is_multipart() else None
        read.append((part.get_content_type(), sorted(params.items()),
                     part.get_content_disposition(), part.get_filename(), content))
    return read


@pytest.mark.parametrize("language", ["de", "ar", "fa", "uk", "en"])
@pytest.mark.parametrize("kind", ["reminder", "cancellation"])
@pytest.mark.parametrize("shape", ["calendar", "html", "text"])
def test_the_wire_bytes_read_as_the_built_message(language, kind, shape):
    rendered = render(kind, language=language, name="Amira", org_name="Caritas; Leverkusen",
                      start=START, mode="in_person",
                      link="https://buendnis.example/antwort/" + "a1" * 40 + "?l=" + language)
    calendar = appointment_calendar(
        uid="appointment-4711@buendnis", sequence=1, start=START, end=START + timedelta(hours=1),
        summary=rendered.summary, cancelled=kind == "cancellation",
        organizer="Bündnis Leverkusen <noreply@buendnis.example>",
        attendee="amira@example.org", language=language, stamp=START)
    values = dict(key="reminder-4711-600", sender="Bündnis Leverkusen <noreply@buendnis.example>",
                  recipient="amira@example.org", subject=rendered.subject + " " + "ü" * 60,
                  text=rendered.text, html=rendered.html if shape != "text" else None,
                  language=language, now=START, calendar=calendar if shape == "calendar" else None,
                  calendar_method="CANCEL" if kind == "cancellation" else "REQUEST")
    ours = mail.wire(**values)
    assert max(len(line) for line in ours.split(b"\r\n")) <= 78
    assert b"\n" not in ours.replace(b"\r\n", b"")
    # As it went over SMTP before: the generator's bytes with CRLF, ended by a line break.
    built = mail.build(**values).as_bytes(policy=compat32.clone(linesep="\r\n"))
    assert parts(ours) == parts(built if built.endswith(b"\r\n") else built + b"\r\n")
    if shape == "calendar":
        assert parts(ours)[-1][-1].encode() == calendar
