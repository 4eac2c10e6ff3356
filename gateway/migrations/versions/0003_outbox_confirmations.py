"""outbox confirmations: an event counts as delivered once every subscriber recorded it

The columns and their meaning: ``buendnis_common.migration_steps.add_outbox_confirmations``, the
same step in every service.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 14:00:00
"""
from alembic import op

from buendnis_common.migration_steps import add_outbox_confirmations, drop_outbox_confirmations

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_confirmations(op)


def downgrade() -> None:
    drop_outbox_confirmations(op)
