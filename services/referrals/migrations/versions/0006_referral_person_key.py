"""referral person key: each referral carries its person's record key

The referral report read every person's key through a join with report_person_keys: on
PostgreSQL with 300,000 persons that hashed the whole key table for each report (about ten times
the report's own time). Each referral now carries a copy of its person's key, filled here for
the referrals made before, and the report's covering index includes it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INCLUDED = ['status', 'from_org', 'to_org', 'need_category', 'answered_at', 'closed_at',
            'overdue_at', 'participant_id']


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_key', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('UPDATE referrals SET person_key = k.record_key FROM report_person_keys k'
                   ' WHERE k.participant_id = referrals.participant_id')
    else:
        op.execute('UPDATE referrals SET person_key = (SELECT k.record_key'
                   ' FROM report_person_keys k WHERE k.participant_id = referrals.participant_id)')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_referrals_alliance_created', table_name='referrals')
        op.create_index('ix_referrals_alliance_created', 'referrals', ['alliance', 'created_at'],
                        postgresql_include=[*INCLUDED, 'person_key'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_referrals_alliance_created', table_name='referrals')
        op.create_index('ix_referrals_alliance_created', 'referrals', ['alliance', 'created_at'],
                        postgresql_include=INCLUDED)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('person_key')
