"""Schema steps that several services' Alembic revisions take alike.

Every service keeps the shared tables of ``buendnis_common.events`` (its ``outbox``), so a change
to them is one revision per service with the same body. The body lives here, once; each revision
calls it. A step is frozen once a revision that calls it has shipped: never edit one, add a new
step for a new change (as a revision is never edited either).
"""
from __future__ import annotations

import sqlalchemy as sa


def add_outbox_confirmations(op) -> None:
    """An event counts as delivered once every subscriber recorded it (session 7):
    ``confirmed_at`` (every subscriber confirmed), ``confirmed_by`` (the subscribers that have,
    comma-separated), ``confirm_due_at`` (when a row still unconfirmed is published again) and
    ``republished`` (how often it was). Rows published before count as confirmed when they were
    published, as they counted as delivered then."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("confirm_due_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("republished", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.create_index(batch_op.f("ix_outbox_confirm_due_at"), ["confirm_due_at"],
                              unique=False)
    op.execute("UPDATE outbox SET confirmed_at = published_at WHERE published_at IS NOT NULL")


def drop_outbox_confirmations(op) -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_confirm_due_at"))
        batch_op.drop_column("republished")
        batch_op.drop_column("confirm_due_at")
        batch_op.drop_column("confirmed_by")
        batch_op.drop_column("confirmed_at")
