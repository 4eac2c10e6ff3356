"""report person keys: the record keys of the Cell Key Method

Every person already referred gets a random record key (drawn here, in Python, from the system's
CSPRNG: the database's own random() is not meant for secrets). The open-need counts get the sum
of their keys, starting at 0 for counts taken in before (their cell keys are then fixed until the
next change). On PostgreSQL the covering index of the referral report also carries the
participant, whose key makes the cell key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:00:00
"""
import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INCLUDED = ['status', 'from_org', 'to_org', 'need_category', 'answered_at', 'closed_at',
            'overdue_at']


def upgrade() -> None:
    keys = op.create_table(
        'report_person_keys',
        sa.Column('participant_id', sa.Uuid(), nullable=False),
        sa.Column('record_key', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('participant_id'),
    )
    connection = op.get_bind()
    people = connection.execute(sa.text('SELECT DISTINCT participant_id FROM referrals'))
    rows = [{'participant_id': pid if isinstance(pid, uuid.UUID) else uuid.UUID(str(pid)),
             'record_key': secrets.randbits(32)} for (pid,) in people]
    if rows:
        op.bulk_insert(keys, rows)
    with op.batch_alter_table('report_need_counts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_sum', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    if connection.dialect.name == 'postgresql':
        op.drop_index('ix_referrals_alliance_created', table_name='referrals')
        op.create_index('ix_referrals_alliance_created', 'referrals', ['alliance', 'created_at'],
                        postgresql_include=[*INCLUDED, 'participant_id'])


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == 'postgresql':
        op.drop_index('ix_referrals_alliance_created', table_name='referrals')
        op.create_index('ix_referrals_alliance_created', 'referrals', ['alliance', 'created_at'],
                        postgresql_include=INCLUDED)
    with op.batch_alter_table('report_need_counts', schema=None) as batch_op:
        batch_op.drop_column('key_sum')
    op.drop_table('report_person_keys')
