"""payment events stored on receipt and processed from a queue

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLAIMED = sa.text("claimed_by IS NOT NULL")


def upgrade() -> None:
    op.create_table("received_events",
    sa.Column("event_id", sa.String(length=128), nullable=False),
    sa.Column("type", sa.String(length=64), nullable=False),
    sa.Column("object", sa.JSON(), nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("processed_at", sa.DateTime(), nullable=True),
    sa.Column("claimed_by", sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint("event_id")
    )
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.create_index("ix_received_events_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_received_events_claimed", ["claimed_by"], unique=False, sqlite_where=CLAIMED,
                              postgresql_where=CLAIMED)


def downgrade() -> None:
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.drop_index("ix_received_events_claimed")
        batch_op.drop_index("ix_received_events_due")
    op.drop_table("received_events")
