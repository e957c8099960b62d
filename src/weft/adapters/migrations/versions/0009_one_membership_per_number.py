"""one membership per number: the tier's amount and cadence, the journey's greeting, the last join link, values an
instance keeps (the generated link secret, the address `weft serve` listens on), test-mode checkout objects

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("paid_amount_cents", sa.Integer(), nullable=True))
    op.add_column("subscribers", sa.Column("paid_payment_type", sa.String(16), nullable=True))
    op.add_column("subscribers", sa.Column("join_link_at", sa.DateTime(), nullable=True))
    op.add_column("journeys", sa.Column("greeting", sa.String(16), nullable=True))
    op.create_index("ix_payments_email", "payments", ["email"], unique=False)
    op.create_table(
        "instance_values",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "test_mode_objects",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lookup", sa.String(320), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_test_mode_objects_lookup", "test_mode_objects", ["kind", "lookup"], unique=False)
    _carry_paid_tiers()


def _carry_paid_tiers() -> None:
    """A paid member's amount and cadence, from the payment that made them paid: their subscription's, else the
    newest paid-up payment of their tier."""
    connection = op.get_bind()
    members = connection.execute(sa.text(
        "SELECT phone, paid_tier, stripe_subscription_id FROM subscribers WHERE membership = 'paid'"
    )).all()
    for phone, tier, subscription in members:
        found = connection.execute(sa.text(
            "SELECT amount_cents, payment_type FROM payments WHERE phone = :phone "
            "AND ((subscription_id IS NOT NULL AND subscription_id = :subscription) "
            "OR (tier = :tier AND status IN ('completed', 'active'))) "
            "ORDER BY CASE WHEN subscription_id = :subscription THEN 0 ELSE 1 END, created_at DESC"
        ), {"phone": phone, "subscription": subscription, "tier": tier}).first()
        if found is not None:
            connection.execute(sa.text(
                "UPDATE subscribers SET paid_amount_cents = :cents, paid_payment_type = :kind WHERE phone = :phone"
            ), {"cents": found[0], "kind": found[1], "phone": phone})


def downgrade() -> None:
    op.drop_index("ix_test_mode_objects_lookup", table_name="test_mode_objects")
    op.drop_table("test_mode_objects")
    op.drop_table("instance_values")
    op.drop_index("ix_payments_email", table_name="payments")
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_column("greeting")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("join_link_at")
        batch_op.drop_column("paid_payment_type")
        batch_op.drop_column("paid_amount_cents")
