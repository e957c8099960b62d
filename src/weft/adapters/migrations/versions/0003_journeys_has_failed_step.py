"""journeys has_failed_step

Revision ID: 0003
Revises: 0002

0002 was once edited in place to create journeys.has_failed_step, so databases at 0002 come in two kinds:
created by the original 0002 (no column) and by the edited one (the column, holding whatever the app wrote).
This adds the column where it is missing, then recomputes it from the steps JSON for every journey in both kinds.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The table as this revision knows it, not as weft.adapters.sql.schema describes it later.
journeys = sa.table(
    "journeys",
    sa.column("id", sa.String(64)),
    sa.column("steps", sa.JSON()),
    sa.column("has_failed_step", sa.Boolean()),
)


def upgrade() -> None:
    bind = op.get_bind()
    columns = {column["name"] for column in sa.inspect(bind).get_columns("journeys")}
    if "has_failed_step" not in columns:
        with op.batch_alter_table("journeys", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("has_failed_step", sa.Boolean(), nullable=False, server_default=sa.false())
            )
    _backfill(bind)


def downgrade() -> None:
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_column("has_failed_step")


def _backfill(bind: sa.Connection) -> None:
    rows = bind.execute(sa.select(journeys.c.id, journeys.c.steps)).all()
    if not rows:
        return
    update = (
        sa.update(journeys)
        .where(journeys.c.id == sa.bindparam("journey_id"))
        .values(has_failed_step=sa.bindparam("failed"))
    )
    bind.execute(update, [{"journey_id": row.id, "failed": _has_failed_step(row.steps)} for row in rows])


def _has_failed_step(steps: Any) -> bool:
    """True when a step failed, as the app decides it: ok is false and the step is not waiting on an outcome."""
    if isinstance(steps, str | bytes):
        steps = json.loads(steps)
    if not isinstance(steps, dict):
        return False
    return any(
        isinstance(record, dict) and not record.get("ok", False) and not record.get("waiting", False)
        for record in steps.values()
    )
