"""outbox confirmations: an event counts as delivered once every subscriber recorded it

``confirmed_at`` (every subscriber confirmed), ``confirmed_by`` (the subscribers that have,
comma-separated), ``confirm_due_at`` (when a row still unconfirmed is published again) and
``republished`` (how often it was): see ``buendnis_common.events``. Rows published before this
revision count as confirmed when they were published, as they counted as delivered then.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirmed_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('confirm_due_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('republished', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_outbox_confirm_due_at'), ['confirm_due_at'],
                              unique=False)
    op.execute('UPDATE outbox SET confirmed_at = published_at WHERE published_at IS NOT NULL')


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_confirm_due_at'))
        batch_op.drop_column('republished')
        batch_op.drop_column('confirm_due_at')
        batch_op.drop_column('confirmed_by')
        batch_op.drop_column('confirmed_at')
