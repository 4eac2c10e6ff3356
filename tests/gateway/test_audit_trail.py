"""Every service's audit entries land in one sealed, append-only trail that an auditor of the
organisation can read and anybody with the chain key can verify — against checkpoints kept
outside the database, so that a trail rewritten or emptied by the database's owner is noticed;
and only genuine entries, signed by the service that recorded them, enter it."""
from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import UTC, datetime

import pytest
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from buendnis_common.events import EVENT_TASK
from buendnis_common.signing import Keyring
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
    assert len(entries[0]["hash"]) == 64  # the entry's seal
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
    # The beat writes checkpoints of the chain's end outside the database; verify agrees.
    checkpoints = platform.audit_checkpoint_dir / "checkpoints.jsonl"
    wait_for(lambda: checkpoints.exists() and checkpoints.read_text().strip(), timeout=30,
             what="a checkpoint written")
    intact = verify(platform)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("audit trail intact:")
    assert "agrees with" in intact.stdout

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


class Trail:
    """A separate trail: append with the platform's chain key, tamper as the database's owner,
    verify with the command against a checkpoint folder of its own."""

    def __init__(self, platform, url: str, checkpoints) -> None:
        from buendnis_common.db import Database

        self.platform, self.url, self.checkpoints = platform, url, checkpoints
        self.keys = Keyring(platform.env["AUDIT_CHAIN_KEY"])
        self.db = Database(url)

    def append(self, count: int) -> None:
        from buendnis_common.db import utcnow
        from gateway.audit import chain

        with self.db.transaction() as session:
            for n in range(count):
                chain.append(session, event_id=uuid.uuid4(), source="intake", keys=self.keys,
                             fields={"at": utcnow().isoformat(), "actor": f"cw.{n}",
                                     "actor_org": "jmd-leverkusen", "action": "participant.read",
                                     "participant_id": str(uuid.uuid4())})

    def checkpoint(self) -> None:
        from gateway.audit import chain

        with self.db.transaction() as session:
            assert chain.write_checkpoint(session, self.checkpoints, keys=self.keys)

    def verify(self) -> subprocess.CompletedProcess:
        env = {**self.platform.env, "GATEWAY_DATABASE_URL": self.url,
               "AUDIT_CHECKPOINT_DIR": str(self.checkpoints)}
        return subprocess.run([str(BIN / "python"), "-m", "gateway.audit", "verify"], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)

    def as_owner(self, *statements: str, **params) -> None:
        """With the owner's rights: drop the protection, then do as the attacker pleases."""
        postgres = self.platform.postgres is not None
        with self.db.engine.begin() as connection:
            if postgres:
                connection.execute(text("ALTER TABLE audit_trail DISABLE TRIGGER "
                                        "audit_trail_append_only"))
            else:
                connection.execute(text("DROP TRIGGER IF EXISTS audit_trail_no_update"))
                connection.execute(text("DROP TRIGGER IF EXISTS audit_trail_no_delete"))
            for statement in statements:
                if statement == "TRUNCATE" and not postgres:
                    statement = "DELETE FROM audit_trail"  # SQLite has no TRUNCATE
                elif statement == "TRUNCATE":
                    statement = "TRUNCATE audit_trail"
                connection.execute(text(statement), params)

    def rows(self) -> list:
        from sqlalchemy import select

        from gateway.audit.models import AuditTrailEntry

        with self.db.Session() as session:
            return list(session.scalars(select(AuditTrailEntry).order_by(AuditTrailEntry.seq)))


@pytest.fixture
def separate(platform, separate_trail, tmp_path):
    trail_ = Trail(platform, separate_trail, tmp_path / "checkpoints")
    yield trail_
    trail_.db.dispose()


def test_a_tampered_entry_is_named_by_the_verify_command(separate):
    separate.append(3)
    assert separate.verify().stdout.strip() == "audit trail intact: 3 entries; no checkpoint yet"
    separate.as_owner("UPDATE audit_trail SET actor = 'someone-else' WHERE seq = 2")
    broken = separate.verify()
    assert broken.returncode == 1
    assert broken.stdout.strip() == ("audit trail broken at entry 2: its content was changed "
                                     "(its seal does not verify)")
    # Removing an entry is named too, at the place where it is missing.
    separate.as_owner("UPDATE audit_trail SET actor = 'cw.1' WHERE seq = 2",
                      "DELETE FROM audit_trail WHERE seq = 2")
    missing = separate.verify().stdout.strip()
    assert missing == "audit trail broken at entry 2: this entry is missing"


def plain_hash(row, actor: str, prev_hash: str) -> str:
    """The chain's old, unkeyed hash, which anyone can recompute."""
    return hashlib.sha256(json.dumps({
        "seq": row.seq, "event_id": str(row.event_id), "source": row.source,
        "at": row.at.isoformat(), "actor": actor, "actor_org": row.actor_org,
        "action": row.action, "participant_id": str(row.participant_id), "record_id": None,
        "request_id": None, "prev_hash": prev_hash,
    }, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_a_chain_rewritten_end_to_end_with_recomputed_hashes_fails_verify(separate):
    separate.append(3)
    assert separate.verify().returncode == 0
    # The owner rewrites every entry (another actor for entry 2) and recomputes every hash and
    # link from the start, as the unkeyed chain allowed.
    prev = "0" * 64
    statements, params = [], {}
    for row in separate.rows():
        actor = "someone-else" if row.seq == 2 else row.actor
        new_hash = plain_hash(row, actor, prev)
        statements.append(f"UPDATE audit_trail SET actor = :a{row.seq}, prev_hash = :p{row.seq},"
                          f" hash = :h{row.seq} WHERE seq = {row.seq}")
        params.update({f"a{row.seq}": actor, f"p{row.seq}": prev, f"h{row.seq}": new_hash})
        prev = new_hash
    separate.as_owner(*statements, **params)
    rewritten = separate.verify()
    assert rewritten.returncode == 1
    assert rewritten.stdout.strip() == ("audit trail broken at entry 1: its content was changed "
                                        "(its seal does not verify)")


def test_a_truncated_or_shortened_trail_fails_verify_against_the_checkpoints(separate):
    separate.append(3)
    separate.checkpoint()
    separate.append(2)
    separate.checkpoint()
    assert "agrees with 2 checkpoint(s), the last at entry 5" in separate.verify().stdout
    # The last two entries removed: what is left is a valid chain, but shorter than checkpoint 2.
    separate.as_owner("DELETE FROM audit_trail WHERE seq > 3")
    shortened = separate.verify()
    assert shortened.returncode == 1
    assert "the trail ends at entry 3" in shortened.stdout and "saw entry 5" in shortened.stdout
    # Emptied (TRUNCATE on PostgreSQL fires no row trigger at all).
    separate.as_owner("TRUNCATE")
    assert separate.rows() == []
    truncated = separate.verify()
    assert truncated.returncode == 1
    assert truncated.stdout.startswith("audit trail broken at entry 1: the trail ends at entry 0")


def test_a_rewrite_with_the_chain_key_fails_against_the_checkpoints_and_so_does_editing_them(
        separate):
    from gateway.audit import chain

    separate.append(3)
    separate.checkpoint()
    # Someone who holds the chain key too rebuilds the trail: every seal verifies, but its end
    # is not the one the checkpoint saw.
    separate.as_owner("TRUNCATE")
    with separate.db.transaction() as session:
        for n in range(3):
            chain.append(session, event_id=uuid.uuid4(), source="intake", keys=separate.keys,
                         fields={"at": datetime.now(UTC).isoformat(), "actor": f"cw.{n}",
                                 "actor_org": "jmd-leverkusen", "action": "participant.read",
                                 "participant_id": str(uuid.uuid4())})
    rewritten = separate.verify()
    assert rewritten.returncode == 1
    assert "audit trail broken at entry 3: it differs from the checkpoint" in rewritten.stdout
    # The checkpoint file edited to match: its own seal gives it away.
    path = separate.checkpoints / "checkpoints.jsonl"
    record = json.loads(path.read_text())
    record["hash"] = separate.rows()[-1].hash
    path.write_text(json.dumps(record) + "\n")
    edited = separate.verify()
    assert edited.returncode == 1
    assert "checkpoint 1" in edited.stdout and "does not verify" in edited.stdout


def test_the_running_gateway_role_cannot_truncate_change_or_unprotect_the_trail(platform):
    if platform.postgres is None:
        pytest.skip("database roles: PostgreSQL only (SQLite has none)")
    runtime_url = platform.env["GATEWAY_DATABASE_URL"]
    owner = make_url(platform.env["GATEWAY_MIGRATE_DATABASE_URL"]).username
    assert make_url(runtime_url).username not in (owner, "postgres")
    wait_for(lambda: trail(platform, "SELECT count(*) FROM audit_trail")[0][0] >= 1, timeout=30,
             what="entries in the trail")
    engine = create_engine(runtime_url)
    try:
        with engine.connect() as connection:  # it may read the trail
            assert connection.execute(text("SELECT count(*) FROM audit_trail")).scalar() >= 1
        for statement in ("TRUNCATE audit_trail",
                          "UPDATE audit_trail SET actor = 'someone-else'",
                          "DELETE FROM audit_trail",
                          "ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only",
                          "ALTER TABLE audit_trail DISABLE TRIGGER ALL",
                          "DROP TRIGGER audit_trail_append_only ON audit_trail",
                          "DROP TABLE audit_trail"):
            with engine.connect() as connection, pytest.raises(DBAPIError) as refused:
                connection.execute(text(statement))
            message = str(refused.value.orig)
            assert "permission denied" in message or "must be owner" in message, statement
    finally:
        engine.dispose()
    assert verify(platform).returncode == 0


def push(platform, envelope) -> None:
    celery = Celery(broker=platform.redis_url)
    try:
        celery.send_task(EVENT_TASK, args=[envelope], queue="gateway")
    finally:
        celery.close()


def audit_event(actor: str, *, source: str = "intake") -> dict:
    return {"id": str(uuid.uuid4()), "type": "audit.recorded", "source": source,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"at": datetime.now(UTC).isoformat(), "actor": actor,
                     "actor_org": "jmd-leverkusen", "action": "participant.read",
                     "participant_id": str(uuid.uuid4())}}


def test_forged_audit_entries_are_refused_and_never_chained(platform):
    forged_actor = f"cw.forged-{uuid.uuid4().hex[:8]}"
    signed_by_intake = platform.sign_event(audit_event(forged_actor))
    forged = {
        "unsigned": audit_event(forged_actor),
        # Entries come from the services that record them; the gateway and the web front end
        # record none, whatever the key.
        "wrong_source": platform.sign_event(audit_event(forged_actor, source="web")),
        # Intake's genuine entry, passed off as one of referrals: the source is signed.
        "bad_signature": {**signed_by_intake, "source": "referrals"},
    }
    for envelope in forged.values():
        push(platform, envelope)
    for reason, envelope in forged.items():
        wait_for(lambda envelope=envelope, reason=reason: any(
            f"event refused by gateway: {reason} (id {envelope['id']}" in line
            for line in platform.log("gateway-worker").splitlines()),
            timeout=30, what=f"the gateway refusing the {reason} entry")
    # A genuine entry sent after them is chained; none of the forged ones is, ever.
    genuine_actor = f"cw.genuine-{uuid.uuid4().hex[:8]}"
    push(platform, platform.sign_event(audit_event(genuine_actor)))
    wait_for(lambda: trail(platform, "SELECT seq FROM audit_trail WHERE actor = :actor",
                           actor=genuine_actor), timeout=30, what="the genuine entry chained")
    assert trail(platform, "SELECT seq FROM audit_trail WHERE actor = :actor",
                 actor=forged_actor) == []
    auditor = platform.as_user("audit.jmd-leverkusen")
    assert auditor.get("/api/v1/audit", params={"actor": forged_actor}).json() == []
    assert verify(platform).returncode == 0


def _old_chain(url: str, count: int) -> None:
    """A trail as revision 0001 wrote it: plain SHA-256 hashes and a head row."""
    from buendnis_common import migrate
    from buendnis_common.db import Database, utcnow
    from gateway.audit.models import AuditTrailEntry

    migrate.upgrade("gateway", url, "0001")
    db = Database(url)
    prev = "0" * 64
    with db.transaction() as session:
        for seq in range(1, count + 1):
            entry = AuditTrailEntry(seq=seq, event_id=uuid.uuid4(), source="intake", at=utcnow(),
                                    actor=f"cw.{seq}", actor_org="jmd-leverkusen",
                                    action="participant.read", participant_id=uuid.uuid4(),
                                    record_id=None, request_id=None, prev_hash=prev)
            entry.hash = prev = plain_hash(entry, entry.actor, prev)
            session.add(entry)
        session.flush()
        session.execute(text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, :s, :h)"),
                        {"s": count, "h": prev})
    db.dispose()


def test_the_migration_reseals_an_intact_old_chain_and_refuses_a_broken_one(tmp_path,
                                                                           monkeypatch):
    from buendnis_common import migrate
    from buendnis_common.db import Database
    from gateway.audit import chain

    monkeypatch.setenv("AUDIT_CHAIN_KEY", "a-chain-key-for-this-test-0123456789abc")
    intact = f"sqlite:///{tmp_path / 'intact.sqlite3'}"
    _old_chain(intact, 3)
    migrate.upgrade("gateway", intact)
    db = Database(intact)
    with db.Session() as session:
        verdict = chain.verify(session, directory=tmp_path / "none")
    db.dispose()
    assert str(verdict) == "audit trail intact: 3 entries; no checkpoint yet"

    broken = f"sqlite:///{tmp_path / 'broken.sqlite3'}"
    _old_chain(broken, 3)
    engine = create_engine(broken)
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_trail_no_update"))
        connection.execute(text("UPDATE audit_trail SET actor = 'someone-else' WHERE seq = 2"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="does not verify at entry 2; it is not re-sealed"):
        migrate.upgrade("gateway", broken)
