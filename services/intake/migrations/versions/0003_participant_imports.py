"""participant imports that run in the worker

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('participant_imports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_org', sa.String(length=120), nullable=False),
    sa.Column('alliance', sa.String(length=120), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('participant_imports', schema=None) as batch_op:
        batch_op.create_index('ix_participant_imports_owner_created',
                              ['owner_org', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('participant_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_participant_imports_owner_created')
    op.drop_table('participant_imports')
