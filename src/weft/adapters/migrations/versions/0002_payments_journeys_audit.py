"""payments journeys audit

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("audit_log",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("action", sa.String(length=64), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=True),
    sa.Column("payment_id", sa.String(length=64), nullable=True),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id")
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table("journeys",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("payment_id", sa.String(length=64), nullable=False),
    sa.Column("steps", sa.JSON(), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("completed_at", sa.DateTime(), nullable=True),
    sa.Column("next_run_at", sa.DateTime(), nullable=True),
    sa.Column("has_failed_step", sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("payment_id")
    )
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journeys_next_run_at"), ["next_run_at"], unique=False)

    op.create_table("payments",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("email", sa.String(length=320), nullable=False),
    sa.Column("tier", sa.String(length=16), nullable=False),
    sa.Column("amount_cents", sa.Integer(), nullable=False),
    sa.Column("payment_type", sa.String(length=16), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("checkout_session_id", sa.String(length=128), nullable=True),
    sa.Column("customer_id", sa.String(length=64), nullable=True),
    sa.Column("subscription_id", sa.String(length=64), nullable=True),
    sa.Column("past_due_notified", sa.Boolean(), nullable=False),
    sa.Column("phone_proven", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("checkout_session_id")
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_subscription_id"), ["subscription_id"], unique=False)

    op.create_table("processed_events",
    sa.Column("event_id", sa.String(length=128), nullable=False),
    sa.Column("processed_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("event_id")
    )
    op.create_table("subscription_cancellations",
    sa.Column("subscription_id", sa.String(length=64), nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("requested_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("subscription_id")
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("stripe_customer_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stripe_subscription_id", sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("stripe_subscription_id")
        batch_op.drop_column("stripe_customer_id")
        batch_op.drop_column("email")

    op.drop_table("subscription_cancellations")
    op.drop_table("processed_events")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_payments_phone"))

    op.drop_table("payments")
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journeys_next_run_at"))

    op.drop_table("journeys")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
