"""offer public: a provider marks an offer for the open offer directory

Offers marked public are served without a token as Open Referral HSDS 3.0 (``/hsds/``). Every
offer made before is not public: nothing is published unless its provider chooses to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.create_index('ix_offers_public', ['public'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index('ix_offers_public')
        batch_op.drop_column('public')
