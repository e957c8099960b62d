"""inbound texts stored on receipt and applied by the inbound worker

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PENDING = sa.text("processed_at IS NULL")
APPLIED_BEFORE_0006 = sa.text("'1970-01-01 00:00:00.000000'")


def upgrade() -> None:
    # A text stored by a Weft that predates this revision (still running during a rolling deploy) was applied when
    # it arrived, and its INSERT names no processed_at: the default marks it applied, so it is not applied twice.
    # This revision's Weft writes NULL explicitly. (A constant: SQLite cannot add a column with CURRENT_TIMESTAMP.)
    op.add_column("inbound_messages", sa.Column("processed_at", sa.DateTime(), nullable=True,
                                                server_default=APPLIED_BEFORE_0006))
    op.add_column("inbound_messages", sa.Column("error", sa.Text(), nullable=True))
    # Every text stored before this revision was applied in the request that stored it.
    op.execute("UPDATE inbound_messages SET processed_at = received_at")
    op.create_index("ix_inbound_messages_pending", "inbound_messages", ["received_at"], unique=False,
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_pending", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("processed_at")
