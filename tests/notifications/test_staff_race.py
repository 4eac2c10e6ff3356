"""Two first requests of one person at the same moment (a page's parallel calls, two tabs): both
store the caller's staff record (``inbox.service.remember``), one of them loses the race on the
primary key. Its request must go on — a 409 for reading one's own inbox was the answer before.

The interleaving is made deterministic: the losing request looked for the record before the
winner committed it (its lookup answers "none"), then inserts. On SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from buendnis_common.auth import Principal
from buendnis_common.db import Database
from notifications.inbox import service
from notifications.inbox.models import InboxEntry, StaffMember
from tests.test_event_batches import database_url  # noqa: F401 - the migrated database fixture

PERSON = Principal(subject="1e0f7d2c-staff-race", username="cw.jmd-leverkusen",
                   client_id="buendnis-web", roles=frozenset({"case_worker"}),
                   org_alias="jmd-leverkusen", alliance="leverkusen")


def test_the_loser_of_a_race_to_store_the_caller_goes_on_with_its_request(database_url):  # noqa: F811
    db = Database(database_url("notifications"))
    now = datetime.now(UTC)
    try:
        with db.transaction() as winner:
            assert service.remember(session=winner, principal=PERSON, email="a@example.org",
                                    now=now) is True
        with db.transaction() as loser:
            looked_before_the_commit = loser.get
            loser.get = lambda model, key, **kw: (  # type: ignore[method-assign]
                None if model is StaffMember else looked_before_the_commit(model, key, **kw))
            assert service.remember(session=loser, principal=PERSON, email="a@example.org",
                                    now=now) is False
            del loser.get
            # The request's own work in the same transaction is kept.
            rows, total = service.list_for(session=loser, principal=PERSON, unread=None,
                                           kind=None, offset=0, limit=25)
            assert (rows, total) == ([], 0)
        with db.transaction() as check:
            assert check.scalar(select(func.count()).select_from(StaffMember)) == 1
            assert check.scalar(select(func.count()).select_from(InboxEntry)) == 0
    finally:
        db.dispose()
