from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.campaigns import CAMPAIGN_QUEUE
from weft.adapters.sql.journeys import JOURNEY_QUEUE
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.mirror import MIRROR_QUEUE
from weft.adapters.sql.outbox import OUTBOX_QUEUE
from weft.adapters.sql.payments import CANCELLATION_QUEUE
from weft.adapters.sql.received_events import RECEIVED_EVENT_QUEUE

QUEUES = (OUTBOX_QUEUE, JOURNEY_QUEUE, CANCELLATION_QUEUE, CAMPAIGN_QUEUE, RECEIVED_EVENT_QUEUE, MIRROR_QUEUE)


class SqlLeases:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._take = _take_statement(connection.dialect.name)

    def renew(self, owner: str, until: datetime) -> None:
        for queue in QUEUES:
            queue.renew(self._c, owner, until)
        self._c.execute(t.leases.update().where(t.leases.c.owner == owner).values(until=until))

    def take(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        row = self._c.execute(self._take, {"name": name, "owner": owner, "until": until, "now": now}).first()
        return row is not None and row.owner == owner

    def release(self, name: str, owner: str) -> None:
        self._c.execute(t.leases.delete().where(t.leases.c.name == name, t.leases.c.owner == owner))


@functools.cache
def _take_statement(dialect_name: str) -> sa.Executable:
    """Insert the lease, or take it over when it is ours or has lapsed; RETURNING tells who holds it."""
    insert = dialect_insert(dialect_name)
    statement = insert(t.leases).values(name=sa.bindparam("name"), owner=sa.bindparam("owner"),
                                        until=sa.bindparam("until"))
    lapsed = sa.or_(t.leases.c.owner == statement.excluded.owner, t.leases.c.until < sa.bindparam("now"))
    take: sa.Executable = statement.on_conflict_do_update(
        index_elements=["name"], set_={"owner": statement.excluded.owner, "until": statement.excluded.until},
        where=lapsed,
    ).returning(t.leases.c.owner)
    return take
