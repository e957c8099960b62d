"""the queue of copies for the organisers' Airtable base

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing is queued for rows that exist already: `weft airtable push` copies every record once, on purpose.
    op.create_table(
        "mirror_queue",
        sa.Column("id", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mirror_queue_due", "mirror_queue", ["next_attempt_at"], unique=False)
    op.create_index("ix_mirror_queue_claimed", "mirror_queue", ["claimed_by"], unique=False,
                    sqlite_where=sa.text("claimed_by IS NOT NULL"), postgresql_where=sa.text("claimed_by IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_mirror_queue_claimed", table_name="mirror_queue")
    op.drop_index("ix_mirror_queue_due", table_name="mirror_queue")
    op.drop_table("mirror_queue")
