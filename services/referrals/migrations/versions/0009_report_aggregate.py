"""report aggregate: the overview reports' figures kept per alliance

Per alliance and per (alliance, person) the counters of the referral, gaps and stuck reports,
and the times to the first answer as a histogram (``referrals.report.aggregate``). A database
without referrals starts with the aggregate built (empty is right); one with referrals starts
without it: the reports count as before until ``python -m referrals.report rebuild`` has run
(the migration does not count them itself, so that it never depends on later code).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:30:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PARTS = ('referrals', 'answered', 'accepted', 'ended', 'completed', 'overdue')


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    state = op.create_table(
        'report_aggregate_state',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'report_alliance_persons',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        sa.Column('participant_id', sa.Uuid(), nullable=False),
        sa.Column('record_key', sa.BigInteger(), nullable=False),
        *_counts(*PARTS, 'closed'),
        sa.PrimaryKeyConstraint('alliance', 'participant_id'),
    )
    totals = []
    for part in (*PARTS, 'stuck'):
        if part != 'stuck':
            totals.append(sa.Column(part, sa.Integer(), nullable=False))
        totals += [sa.Column(f'{part}_persons', sa.Integer(), nullable=False),
                   sa.Column(f'{part}_key_sum', sa.BigInteger(), nullable=False)]
    op.create_table(
        'report_alliance_totals',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        *totals,
        sa.PrimaryKeyConstraint('alliance'),
    )
    op.create_table(
        'report_open_referral_persons',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        sa.Column('need_category', sa.String(length=40), nullable=False),
        sa.Column('participant_id', sa.Uuid(), nullable=False),
        sa.Column('record_key', sa.BigInteger(), nullable=False),
        *_counts('open_referrals'),
        sa.PrimaryKeyConstraint('alliance', 'need_category', 'participant_id'),
    )
    op.create_table(
        'report_open_referral_totals',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        sa.Column('need_category', sa.String(length=40), nullable=False),
        *_counts('open_referrals', 'persons'),
        sa.Column('key_sum', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('alliance', 'need_category'),
    )
    op.create_table(
        'report_answer_times',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        sa.Column('hour', sa.BigInteger(), nullable=False),
        sa.Column('micros', sa.BigInteger(), nullable=False),
        *_counts('answers'),
        sa.PrimaryKeyConstraint('alliance', 'hour', 'micros'),
    )
    op.create_table(
        'report_answer_hours',
        sa.Column('alliance', sa.String(length=120), nullable=False),
        sa.Column('hour', sa.BigInteger(), nullable=False),
        *_counts('answers'),
        sa.PrimaryKeyConstraint('alliance', 'hour'),
    )
    empty = op.get_bind().execute(sa.text('SELECT 1 FROM referrals LIMIT 1')).first() is None
    op.bulk_insert(state, [{'name': 'referrals',
                            'built_at': datetime.now(UTC) if empty else None}])


def downgrade() -> None:
    for table in ('report_answer_hours', 'report_answer_times', 'report_open_referral_totals',
                  'report_open_referral_persons', 'report_alliance_totals',
                  'report_alliance_persons', 'report_aggregate_state'):
        op.drop_table(table)
