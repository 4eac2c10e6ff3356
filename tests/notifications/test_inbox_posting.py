"""Posting many inbox entries at once (``inbox.post_many``, a burst of case workers' reminders):
each entry once, its e-mail copies after it, the same recipients as one ``post`` at a time."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session

import notifications.models  # noqa: F401 - every table on the metadata
from notifications.db import Base
from notifications.inbox import service
from notifications.inbox.models import EmailCopy, EmailPreference, InboxEntry, StaffMember

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
KIND = "appointment.reminder"


@pytest.fixture
def session():
    engine = create_engine("sqlite://")

    @event.listens_for(engine, "connect")
    def _foreign_keys(connection, _record):
        connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([
            StaffMember(sub="anna", username="anna", email="anna@example.org",
                        org_alias="caritas", roles=["case_worker"], last_seen_at=NOW),
            StaffMember(sub="ben", username="ben", email="ben@example.org",
                        org_alias="caritas", roles=["case_worker"], last_seen_at=NOW),
            StaffMember(sub="cleo", username="cleo", email="cleo@example.org",
                        org_alias="caritas", roles=["coordinator"], last_seen_at=NOW),
            EmailPreference(user_sub="ben", kind=KIND, email=False),
        ])
        session.commit()
        yield session
    engine.dispose()


def entry(key: str, **fields):
    return {"kind": KIND, "recipient_org": "caritas", "dedupe_key": key, **fields}


def test_a_batch_posts_each_key_once_with_its_copies_after_it(session):
    made = service.post_many(session=session, now=NOW, entries=[
        entry("r1"), entry("r2", recipient_user="cleo"), entry("r1"),
    ])
    session.commit()  # the copies refer to their entries: a wrong order fails here
    assert [m is not None for m in made] == [True, True, False]
    again = service.post_many(session=session, now=NOW, entries=[entry("r2"), entry("r3")])
    session.commit()
    assert [m is not None for m in again] == [False, True]
    assert session.scalar(select(func.count()).select_from(InboxEntry)) == 3
    copies = {(copy.entry_id, copy.user_sub) for copy in session.scalars(select(EmailCopy))}
    # To the organisation: its case workers with the kind switched on (not Ben, not Cleo);
    # to one user: that user.
    assert copies == {(made[0].id, "anna"), (made[1].id, "cleo"), (again[1].id, "anna")}


def test_one_post_still_says_none_for_a_key_posted_before(session):
    assert service.post(session=session, now=NOW, **entry("r9")) is not None
    assert service.post(session=session, now=NOW, **entry("r9")) is None
    session.commit()
    assert session.scalar(select(func.count()).select_from(EmailCopy)) == 1
