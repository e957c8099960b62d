"""send pipeline: outbox lanes, leases and keys; campaigns; named leases; daily send counts

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CLAIMED = sa.text("claimed_by IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("in_doubt", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("possible_duplicate", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("first_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("journey_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_ready", ["status", "lane", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_outbox_claimed", ["claimed_by"], unique=False, sqlite_where=CLAIMED,
                              postgresql_where=CLAIMED)
        batch_op.create_index("ix_outbox_campaign", ["campaign_id", "status", "sent_at"], unique=False)
    op.execute("UPDATE outbox SET lane = 1 WHERE kind = 'care'")

    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_journeys_claimed", ["claimed_by"], unique=False, sqlite_where=CLAIMED,
                              postgresql_where=CLAIMED)

    with op.batch_alter_table("subscription_cancellations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_cancellations_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_cancellations_claimed", ["claimed_by"], unique=False, sqlite_where=CLAIMED,
                              postgresql_where=CLAIMED)

    op.create_table("campaigns",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("month", sa.String(length=7), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("state", sa.String(length=16), nullable=False),
    sa.Column("cursor", sa.String(length=20), nullable=True),
    sa.Column("selected", sa.Integer(), nullable=False),
    sa.Column("skipped", sa.JSON(), nullable=False),
    sa.Column("passes", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=True),
    sa.Column("next_run_at", sa.DateTime(), nullable=True),
    sa.Column("claimed_by", sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("month")
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_next_run_at"), ["next_run_at"], unique=False)

    op.create_table("leases",
    sa.Column("name", sa.String(length=64), nullable=False),
    sa.Column("owner", sa.String(length=36), nullable=False),
    sa.Column("until", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("name")
    )
    op.create_table("sms_daily_counts",
    sa.Column("day", sa.String(length=10), nullable=False),
    sa.Column("sent", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("day")
    )


def downgrade() -> None:
    op.drop_table("sms_daily_counts")
    op.drop_table("leases")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_next_run_at"))
    op.drop_table("campaigns")

    with op.batch_alter_table("subscription_cancellations", schema=None) as batch_op:
        batch_op.drop_index("ix_cancellations_claimed")
        batch_op.drop_index("ix_cancellations_due")
        batch_op.drop_column("claimed_by")

    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_index("ix_journeys_claimed")
        batch_op.drop_column("claimed_by")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_campaign")
        batch_op.drop_index("ix_outbox_claimed")
        batch_op.drop_index("ix_outbox_ready")
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        for column in ("campaign_id", "journey_id", "expires_at", "first_attempt_at", "possible_duplicate",
                       "in_doubt", "claimed_by", "lane"):
            batch_op.drop_column(column)
