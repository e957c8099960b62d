from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.ports import PaymentEvent
from weft.application.unit_of_work import Lease, ReceivedEvent

RECEIVED_EVENT_QUEUE = QueueTable(t.received_events, "next_attempt_at")


class SqlReceivedEvents:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._receive = _receive_statement(connection.dialect.name)

    def receive(self, event: PaymentEvent, at: datetime) -> bool:
        values = received_event_values(ReceivedEvent(event, received_at=at, next_attempt_at=at))
        return self._c.execute(self._receive, values).first() is not None

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[ReceivedEvent]:
        rows = RECEIVED_EVENT_QUEUE.claim(self._c, lease, now, limit, t.received_events.c.status == "pending")
        return [received_event_from_row(row) for row in rows]

    def save(self, received: ReceivedEvent) -> None:
        values = {**received_event_values(received), "claimed_by": None}
        del values["object"]  # the event itself never changes
        self._c.execute(t.received_events.update()
                        .where(t.received_events.c.event_id == received.event.id).values(**values))


@functools.cache
def _receive_statement(dialect_name: str) -> sa.Executable:
    """Built once, executed with a dict of values: the webhook's one statement skips building and compiling."""
    insert = dialect_insert(dialect_name)(t.received_events)
    received: sa.Executable = insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(
        t.received_events.c.event_id)
    return received


def received_event_values(r: ReceivedEvent) -> dict[str, Any]:
    return {"event_id": r.event.id, "type": r.event.type, "object": r.event.object, "received_at": r.received_at,
            "status": r.status, "attempts": r.attempts, "next_attempt_at": r.next_attempt_at, "error": r.error,
            "processed_at": r.processed_at}


def received_event_from_row(row: sa.Row[Any]) -> ReceivedEvent:
    m = row._mapping
    return ReceivedEvent(PaymentEvent(m["event_id"], m["type"], dict(m["object"])), received_at=m["received_at"],
                         status=m["status"], attempts=m["attempts"], next_attempt_at=m["next_attempt_at"],
                         error=m["error"], processed_at=m["processed_at"])
