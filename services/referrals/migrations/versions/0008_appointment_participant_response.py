"""appointment participant response: a participant answers a reminder

``participant_response`` (``confirmed``, ``cancel_requested``) and ``responded_at`` on the
appointment, by SMS reply or the link of an e-mail reminder; ``answer_link_uses`` makes each of
a link's answers work once. Appointments before have no answer.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('participant_response', sa.String(length=20),
                                      nullable=True))
        batch_op.add_column(sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'answer_link_uses',
        sa.Column('appointment_id', sa.Uuid(), nullable=False),
        sa.Column('response', sa.String(length=20), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('appointment_id', 'response'),
    )


def downgrade() -> None:
    op.drop_table('answer_link_uses')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_column('responded_at')
        batch_op.drop_column('participant_response')
