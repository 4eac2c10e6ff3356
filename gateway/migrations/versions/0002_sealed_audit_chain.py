"""audit chain sealed with AUDIT_CHAIN_KEY; the head row goes

The chain's hashes become HMAC-SHA256 seals under ``AUDIT_CHAIN_KEY`` (a key the database does
not hold), and the writable head row goes: appends are serialised by an advisory lock, and the
chain's end is recorded in checkpoints outside the database. Entries written before this
revision are checked with their old plain hashes (and against the head row) and re-sealed; a
trail that does not verify is not re-sealed, the migration stops instead.

The seal's canonical form is written out here, as it is at this revision, so that the migration
stays what it was when ``gateway.audit.chain`` changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
COLUMNS = ("seq", "event_id", "source", "at", "actor", "actor_org", "action", "participant_id",
           "record_id", "request_id", "prev_hash", "hash")


def _canonical(row, prev_hash: str) -> bytes:
    def text(value):
        return str(value) if value is not None else None

    return json.dumps(
        {"seq": row.seq, "event_id": str(row.event_id), "source": row.source,
         "at": row.at.isoformat(), "actor": row.actor, "actor_org": row.actor_org,
         "action": row.action, "participant_id": text(row.participant_id),
         "record_id": text(row.record_id), "request_id": row.request_id,
         "prev_hash": prev_hash},
        sort_keys=True, separators=(",", ":"),
    ).encode()


def _rows(bind):
    from buendnis_common.db import UtcDateTime  # times read back with their offset, as sealed

    typed = {"at": UtcDateTime(), "event_id": sa.Uuid(), "participant_id": sa.Uuid(),
             "record_id": sa.Uuid()}
    trail = sa.table("audit_trail", *[sa.column(name, typed.get(name)) for name in COLUMNS])
    return trail, list(bind.execute(sa.select(trail).order_by(trail.c.seq)))


def _reseal(bind) -> None:
    trail, rows = _rows(bind)
    head = bind.execute(sa.text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).first()
    if not rows:
        return
    prev = GENESIS
    for expected, row in enumerate(rows, start=1):
        plain = hashlib.sha256(_canonical(row, prev)).hexdigest()
        if row.seq != expected or row.prev_hash != prev or row.hash != plain:
            raise RuntimeError(f"the audit trail does not verify at entry {expected}; it is "
                               "not re-sealed (run `python -m gateway.audit verify` at 0001)")
        prev = row.hash
    if head is None or (head.seq, head.hash) != (rows[-1].seq, prev):
        raise RuntimeError("the audit trail's head does not match its last entry; not re-sealed")

    from gateway.audit.chain import chain_keys  # reads AUDIT_CHAIN_KEY, as the gateway does

    keys = chain_keys()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only")
    else:
        op.execute("DROP TRIGGER audit_trail_no_update")
    prev = GENESIS
    for row in rows:
        sealed = keys.mac(_canonical(row, prev))
        bind.execute(sa.update(trail).where(trail.c.seq == row.seq)
                     .values(prev_hash=prev, hash=sealed))
        prev = sealed
    if postgres:
        op.execute("ALTER TABLE audit_trail ENABLE TRIGGER audit_trail_append_only")
    else:
        op.execute("CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail "
                   "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END")


def upgrade() -> None:
    _reseal(op.get_bind())
    op.drop_table('audit_chain_head')


def downgrade() -> None:
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO audit_chain_head (id, seq, hash) SELECT 1, seq, hash FROM "
               "audit_trail ORDER BY seq DESC LIMIT 1")
