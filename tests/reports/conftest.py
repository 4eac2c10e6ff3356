"""Reports on known data sets: a fresh referrals database per test (SQLite, or PostgreSQL on the
server of ``BUENDNIS_TEST_PG_URL``), and rows put in directly, so that every figure can be worked
out by hand."""
from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from buendnis_common import migrate
from referrals.offer.models import Offer
from referrals.referral.models import CLOSED, Referral

MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def database_url(tmp_path):
    """An empty database, not migrated."""
    server = os.environ.get("BUENDNIS_TEST_PG_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'referrals.sqlite3'}"
        return
    name = f"t{secrets.token_hex(4)}_reports"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def session(database_url):
    migrate.upgrade("referrals", database_url)
    engine = create_engine(database_url)
    try:
        with Session(engine) as opened:
            yield opened
    finally:
        engine.dispose()


def referral(*, status: str, alliance: str = "leverkusen", to_org: str = "caritas-leverkusen",
             from_org: str = "jmd-leverkusen", need_category: str = "language_course",
             created_at: datetime = MARCH, answered_after_hours: float | None = None,
             closed_on_answer: bool = False, overdue: bool = False,
             participant_id: uuid.UUID | None = None) -> Referral:
    """A referral as the state machine leaves it: answered ``answered_after_hours`` after it
    was made (the receiver's first answer); closed with that answer (a rejection, the
    receiver's cancellation) or a day later."""
    answered_at = (created_at + timedelta(hours=answered_after_hours)
                   if answered_after_hours is not None else None)
    closed_at = None
    if status in CLOSED:
        closed_at = answered_at if closed_on_answer else (
            (answered_at or created_at) + timedelta(days=1))
    return Referral(
        participant_id=participant_id or uuid.uuid4(), pseudonym="P-TEST", from_org=from_org,
        to_org=to_org, alliance=alliance, need_category=need_category, status=status,
        sender_user="cw.test", sender_user_id="u-test", created_at=created_at,
        updated_at=created_at, due_at=created_at + timedelta(days=7),
        overdue_at=created_at + timedelta(days=8) if overdue else None,
        answered_at=answered_at, closed_at=closed_at,
    )


def offer(*, category: str, capacity: int | None, active: bool = True,
          alliance: str = "leverkusen") -> Offer:
    return Offer(provider_org="caritas-leverkusen", alliance=alliance, title="Sprachkurs",
                 category=category, capacity=capacity, active=active, created_by="cw.test")

