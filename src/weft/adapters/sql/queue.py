from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from weft.application.unit_of_work import Lease


@attrs.frozen
class QueueTable:
    """A table whose rows are background work: due by one column, claimed by writing the lease's end into it
    and the owner into `claimed_by`. The one claim/renew mechanism of every queue (outbox, journeys,
    cancellations, campaigns)."""

    table: sa.Table
    due: str

    @property
    def key(self) -> sa.Column[Any]:
        (column,) = self.table.primary_key.columns
        return column

    def claim(self, c: sa.Connection, lease: Lease, now: datetime, limit: int,
              *where: sa.ColumnElement[bool]) -> Sequence[sa.Row[Any]]:
        """Lock and claim up to `limit` due rows, oldest first; the rows come back as they were before the claim
        (so `claimed_by` set means a lapsed claim)."""
        due = self.table.c[self.due]
        query = (
            sa.select(self.table).where(due <= now, *where).order_by(due).limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = c.execute(query).all()
        if rows:
            keys = [row._mapping[self.key.name] for row in rows]
            c.execute(self.table.update().where(self.key.in_(keys)).values(
                {self.due: lease.until, "claimed_by": lease.owner}))
        return rows

    def renew(self, c: sa.Connection, owner: str, until: datetime) -> None:
        c.execute(self.table.update().where(self.table.c.claimed_by == owner).values({self.due: until}))

    def wake(self, c: sa.Connection, key: str, at: datetime) -> bool:
        """Due by `at` unless claimed; False when a worker holds the row (or there is no such row)."""
        due = self.table.c[self.due]
        unclaimed = sa.and_(self.key == key, self.table.c.claimed_by.is_(None))
        exists = c.execute(sa.select(self.key).where(unclaimed)).first() is not None
        if exists:
            c.execute(self.table.update().where(unclaimed, sa.or_(due.is_(None), due > at)).values({self.due: at}))
        return exists

    def schedule(self, c: sa.Connection, key: str, at: datetime | None) -> None:
        c.execute(self.table.update().where(self.key == key).values({self.due: at, "claimed_by": None}))
