"""Every service's audit entries land in one hash-chained, append-only trail that an auditor of
the organisation can read and anybody can verify."""
from __future__ import annotations

import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.intake.conftest import person
from tests.support.platform import BIN, REPO, wait_for

pytestmark = pytest.mark.platform


def trail(platform, sql: str, **params):
    engine = create_engine(platform.database_urls["gateway"])
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else None
    finally:
        engine.dispose()


def verify(platform) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "gateway.audit", "verify"], cwd=REPO,
                          env=platform.env, capture_output=True, text=True, timeout=60)


def test_an_auditor_reads_the_own_organisations_trail_only(platform):
    jmd = platform.as_user("cw.jmd-leverkusen")
    created = jmd.post("/api/v1/participants", json=person(),
                       headers={"X-Request-ID": f"audit-{uuid.uuid4().hex[:8]}"}).json()
    auditor = platform.as_user("audit.jmd-leverkusen")
    query = {"participant_id": created["id"]}
    entries = wait_for(lambda: auditor.get("/api/v1/audit", params=query).json(), timeout=30,
                       what="the entry reaching the audit trail")
    assert entries[0]["action"] == "participant.create"
    assert entries[0]["actor"] == "cw.jmd-leverkusen"
    assert entries[0]["actor_org"] == "jmd-leverkusen"
    assert entries[0]["source"] == "intake"
    assert len(entries[0]["hash"]) == 64
    assert created["given_name"] not in str(entries)
    # Filters: by actor and by time.
    assert auditor.get("/api/v1/audit", params={**query, "actor": "nobody"}).json() == []
    assert auditor.get("/api/v1/audit", params={**query, "to": "2000-01-01T00:00:00+00:00"}
                       ).json() == []
    assert auditor.get("/api/v1/audit", params={"from": "yesterday"}).status_code == 422
    # Another organisation's auditor sees none of it; a case worker may not read the trail.
    other = platform.as_user("cw.caritas-leverkusen")
    assert other.get("/api/v1/audit").status_code == 403
    caritas_created = other.post("/api/v1/participants", json=person()).json()
    wait_for(lambda: trail(platform, "SELECT seq FROM audit_trail WHERE actor = "
                           "'cw.caritas-leverkusen'"), timeout=30, what="caritas entries")
    everything = auditor.get("/api/v1/audit", params={"page_size": 500}).json()
    assert {entry["actor_org"] for entry in everything} == {"jmd-leverkusen"}
    assert caritas_created["id"] not in str(everything)


def test_the_trail_is_append_only_and_verifies_intact(platform):
    jmd = platform.as_user("cw.jmd-leverkusen")
    jmd.post("/api/v1/participants", json=person())
    wait_for(lambda: trail(platform, "SELECT count(*) FROM audit_trail")[0][0] >= 2, timeout=30,
             what="entries in the trail")
    intact = verify(platform)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("audit trail intact:")

    with pytest.raises(Exception, match="append-only"):
        trail(platform, "UPDATE audit_trail SET actor = 'someone-else' WHERE seq = 2")
    with pytest.raises(Exception, match="append-only"):
        trail(platform, "DELETE FROM audit_trail WHERE seq = 2")



@pytest.fixture
def separate_trail(platform, tmp_path):
    """A trail of its own, so that tampering with it leaves the shared one intact."""
    from buendnis_common import migrate

    if platform.postgres:
        name = f"{platform.postgres.prefix}_tamper"
        with platform.postgres.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = platform.postgres.admin_url.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'trail.sqlite3'}"
    migrate.upgrade("gateway", url)
    yield url
    if platform.postgres:
        with platform.postgres.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_a_tampered_entry_is_named_by_the_verify_command(platform, separate_trail):
    from buendnis_common.db import Database, utcnow
    from gateway.audit import chain

    db = Database(separate_trail)
    with db.transaction() as session:
        for n in range(3):
            chain.append(session, event_id=uuid.uuid4(), source="intake", fields={
                "at": utcnow().isoformat(), "actor": f"cw.{n}", "actor_org": "jmd-leverkusen",
                "action": "participant.read", "participant_id": str(uuid.uuid4())})
    env = {**platform.env, "GATEWAY_DATABASE_URL": separate_trail}

    def verify_separate() -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "python"), "-m", "gateway.audit", "verify"], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)

    assert verify_separate().stdout.strip() == "audit trail intact: 3 entries"
    # Someone with the database owner's rights drops the protection and edits an entry.
    with db.engine.begin() as connection:
        if platform.postgres:
            connection.execute(text("ALTER TABLE audit_trail DISABLE TRIGGER "
                                    "audit_trail_append_only"))
        else:
            connection.execute(text("DROP TRIGGER audit_trail_no_update"))
            connection.execute(text("DROP TRIGGER audit_trail_no_delete"))
        connection.execute(text("UPDATE audit_trail SET actor = 'someone-else' WHERE seq = 2"))
    broken = verify_separate()
    assert broken.returncode == 1
    assert broken.stdout.strip() == "audit trail broken at entry 2: its content was changed"
    # Removing an entry is named too, at the place where it is missing.
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_trail SET actor = 'cw.1' WHERE seq = 2"))
        connection.execute(text("DELETE FROM audit_trail WHERE seq = 2"))
    missing = verify_separate().stdout.strip()
    assert missing == "audit trail broken at entry 2: this entry is missing"
    db.dispose()
