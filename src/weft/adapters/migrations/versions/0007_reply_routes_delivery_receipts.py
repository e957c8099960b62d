"""provider-neutral reply routes, delivery receipts, and the provider sync's cursor

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One opaque reply route replaces Bird's conversation and channel ids; the old columns stay (a Weft from before
    # this revision may still be running during a rolling deploy) but are no longer written.
    op.add_column("inbound_messages", sa.Column("reply_route", sa.String(300), nullable=True))
    op.add_column("outbox", sa.Column("reply_route", sa.String(300), nullable=True))
    op.add_column("outbox", sa.Column("delivery_state", sa.String(16), nullable=True))
    op.add_column("outbox", sa.Column("delivery_error_code", sa.String(32), nullable=True))
    op.add_column("outbox", sa.Column("delivery_at", sa.DateTime(), nullable=True))
    op.create_index("ix_outbox_provider_id", "outbox", ["provider_id"], unique=False)
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"], unique=False)
    op.create_table(
        "delivery_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("outbox_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_receipts_provider_id", "delivery_receipts", ["provider_id"], unique=False)
    op.create_index("ix_delivery_receipts_outbox_id", "delivery_receipts", ["outbox_id"], unique=False)
    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    _carry_bird_routes()


def _carry_bird_routes() -> None:
    """Texts still waiting (to be applied, to be sent) keep their Bird route, in the form the Bird adapter reads
    (weft.adapters.bird.sender.bird_route at this revision). Routes of finished texts are not needed."""
    connection = op.get_bind()
    waiting = {
        "inbound_messages": ("provider_id", "processed_at IS NULL"),
        "outbox": ("id", "status = 'pending'"),
    }
    for table, (key, condition) in waiting.items():
        rows = connection.execute(sa.text(
            f"SELECT {key}, channel_id, conversation_id FROM {table} "
            f"WHERE {condition} AND (channel_id IS NOT NULL OR conversation_id IS NOT NULL)"
        )).all()
        for ident, channel, conversation in rows:
            route = urlencode({k: v for k, v in (("channel", channel), ("conversation", conversation)) if v})
            connection.execute(sa.text(f"UPDATE {table} SET reply_route = :route WHERE {key} = :ident"),
                               {"route": route, "ident": ident})


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_index("ix_delivery_receipts_outbox_id", table_name="delivery_receipts")
    op.drop_index("ix_delivery_receipts_provider_id", table_name="delivery_receipts")
    op.drop_table("delivery_receipts")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_outbox_provider_id", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("delivery_at")
        batch_op.drop_column("delivery_error_code")
        batch_op.drop_column("delivery_state")
        batch_op.drop_column("reply_route")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("reply_route")
