"""initial schema

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("consent_history",
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("consent", sa.String(length=16), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("message_id", sa.String(length=128), nullable=True),
    sa.Column("reason", sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint("id")
    )
    with op.batch_alter_table("consent_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_history_phone"), ["phone"], unique=False)

    op.create_table("inbound_messages",
    sa.Column("provider_id", sa.String(length=128), nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("conversation_id", sa.String(length=128), nullable=True),
    sa.Column("channel_id", sa.String(length=128), nullable=True),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("provider_id")
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_messages_phone"), ["phone"], unique=False)

    op.create_table("outbox",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("conversation_id", sa.String(length=128), nullable=True),
    sa.Column("channel_id", sa.String(length=128), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
    sa.Column("provider_id", sa.String(length=128), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("sent_at", sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint("id")
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_phone"), ["phone"], unique=False)

    op.create_table("subscribers",
    sa.Column("phone", sa.String(length=20), nullable=False),
    sa.Column("consent", sa.String(length=16), nullable=False),
    sa.Column("membership", sa.String(length=16), nullable=False),
    sa.Column("paid_tier", sa.String(length=32), nullable=True),
    sa.Column("consent_changed_at", sa.DateTime(), nullable=True),
    sa.Column("consent_message_id", sa.String(length=128), nullable=True),
    sa.Column("last_message", sa.Text(), nullable=True),
    sa.Column("last_message_at", sa.DateTime(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("phone")
    )


def downgrade() -> None:
    op.drop_table("subscribers")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_phone"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_phone"))

    op.drop_table("inbound_messages")
    with op.batch_alter_table("consent_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_history_phone"))

    op.drop_table("consent_history")
