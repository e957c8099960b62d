from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import Lease
from weft.domain.journey import Journey, Step, StepRecord
from weft.domain.membership import Greeting

JOURNEY_QUEUE = QueueTable(t.journeys, "next_run_at")


class SqlJourneys:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)

    def get(self, journey_id: str) -> Journey | None:
        row = self._c.execute(sa.select(t.journeys).where(t.journeys.c.id == journey_id).with_for_update()).first()
        return None if row is None else journey_from_row(row)

    def save(self, journey: Journey) -> None:
        values = journey_values(journey)
        statement = self._insert(t.journeys).values(**values)
        self._c.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))

    def schedule(self, journey_id: str, at: datetime | None) -> None:
        JOURNEY_QUEUE.schedule(self._c, journey_id, at)

    def wake(self, journey_id: str, at: datetime) -> bool:
        return JOURNEY_QUEUE.wake(self._c, journey_id, at)

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Journey]:
        return [journey_from_row(row) for row in JOURNEY_QUEUE.claim(self._c, lease, now, limit)]


def journey_values(j: Journey) -> dict[str, Any]:
    steps = {s.value: {"at": r.at.isoformat(), "ok": r.ok, "detail": r.detail, "transient": r.transient,
                       "waiting": r.waiting}
             for s, r in j.steps.items()}
    return {"id": j.id, "payment_id": j.payment_id, "steps": steps, "started_at": j.started_at,
            "completed_at": j.completed_at, "has_failed_step": bool(j.failed_steps), "greeting": j.greeting.value}


def journey_from_row(row: sa.Row[Any]) -> Journey:
    m = row._mapping
    steps = {
        Step(name): StepRecord(datetime.fromisoformat(r["at"]), bool(r["ok"]), r.get("detail", ""),
                               bool(r.get("transient", False)), bool(r.get("waiting", False)))
        for name, r in m["steps"].items()
    }
    # Journeys from before 0009 have no greeting: each of them was a welcome.
    return Journey(id=m["id"], payment_id=m["payment_id"], started_at=m["started_at"], steps=steps,
                   completed_at=m["completed_at"], greeting=Greeting(m["greeting"] or Greeting.WELCOME.value))
