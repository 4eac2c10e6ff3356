"""Moving an appointment again and again must not flood the participant with messages.

Every move used to give the participant a notice at once (and new reminders at the new time):
a case worker, or anyone with their account, moving an appointment back and forth could send
the person an SMS a minute. Now the messages to the participant about one appointment are at
least ``CHANGE_NOTICE_INTERVAL`` (default ``30m``) apart:

- a move cancels what has not gone out yet (the earlier notice, the reminders) and plans anew,
  so notices of several moves in a row coalesce into one, which names the latest time (the text
  is rendered from the appointment when it is sent);
- the new notice (and any reminder planned with it) goes out no earlier than the interval after
  the last message the participant was actually sent about this appointment, and the new
  messages keep that distance from one another.

So whatever the number of moves, the participant gets at most one message per interval about an
appointment. A message held back past the start of the appointment is not sent (``too_late``),
as any message is not sent once an appointment has begun; the reminders of the offsets still
come before it when there is time.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifications.delivery.models import SCHEDULED
from notifications.reminder.models import PARTICIPANT, Reminder


def space_out(*, session: Session, appointment_id, new: list[Reminder],
              interval: timedelta) -> None:
    """Move the due times of the newly planned messages to the participant (``new``) so that
    they keep ``interval`` from the last one sent and from one another."""
    if interval <= timedelta(0):
        return
    planned = {row.id for row in new}
    sent_times = [
        sent or handed for handed, sent, row_id in session.execute(
            select(Reminder.handed_over_at, Reminder.sent_at, Reminder.id).where(
                Reminder.appointment_id == appointment_id, Reminder.recipient == PARTICIPANT)
        ) if (handed or sent) and row_id not in planned
    ]
    floor = max(sent_times) + interval if sent_times else None
    waiting = sorted((row for row in new
                      if row.recipient == PARTICIPANT and row.status == SCHEDULED),
                     key=lambda row: row.due_at)
    for row in waiting:
        if floor is not None and row.due_at < floor:
            row.due_at = floor
        floor = row.due_at + interval
