"""the outbox's failed texts indexed on their own, so the delivery page's latest failures stay quick however many
texts went out well

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FAILED = sa.text("status IN ('failed', 'expired') OR delivery_state IN ('undelivered', 'failed')")


def upgrade() -> None:
    op.create_index("ix_outbox_failed", "outbox", ["created_at", "id"], sqlite_where=FAILED,
                    postgresql_where=FAILED)


def downgrade() -> None:
    op.drop_index("ix_outbox_failed", table_name="outbox")
