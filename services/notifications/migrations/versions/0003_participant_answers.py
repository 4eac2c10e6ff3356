"""participant answers: SMS replies matched by a keyed hash of the number, STOP

``sms_recipients``: per SMS about an appointment, the HMAC of the number it went to (never the
number) and the language; ``inbound_sms``: the replies seen, by the provider's MessageSid;
``sms_opt_outs``: numbers that sent STOP.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sms_recipients',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('appointment_id', sa.Uuid(), nullable=False),
        sa.Column('participant_id', sa.Uuid(), nullable=False),
        sa.Column('reminder_id', sa.Uuid(), nullable=True),
        sa.Column('number_hash', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('reminder_id'),
    )
    op.create_index('ix_sms_recipients_number', 'sms_recipients', ['number_hash', 'sent_at'])
    op.create_index('ix_sms_recipients_appointment_id', 'sms_recipients', ['appointment_id'])
    op.create_index('ix_sms_recipients_participant_id', 'sms_recipients', ['participant_id'])
    op.create_table(
        'inbound_sms',
        sa.Column('message_sid', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=24), nullable=False),
        sa.Column('appointment_id', sa.Uuid(), nullable=True),
        sa.Column('language', sa.String(length=8), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('message_sid'),
    )
    op.create_table(
        'sms_opt_outs',
        sa.Column('number_hash', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('number_hash'),
    )


def downgrade() -> None:
    op.drop_table('sms_opt_outs')
    op.drop_table('inbound_sms')
    op.drop_index('ix_sms_recipients_participant_id', table_name='sms_recipients')
    op.drop_index('ix_sms_recipients_appointment_id', table_name='sms_recipients')
    op.drop_index('ix_sms_recipients_number', table_name='sms_recipients')
    op.drop_table('sms_recipients')
