from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.domain.alerts import Alert, AlertKind

ACTIVE_ALERTS = sa.select(t.alerts).where(t.alerts.c.active.is_(True)).order_by(t.alerts.c.since, t.alerts.c.kind)


class SqlAlerts:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)

    def get(self, kind: AlertKind) -> Alert:
        # The row is made first, so two processes checking at once queue on its lock instead of both inserting.
        self._c.execute(self._insert(t.alerts).values(kind=kind.value, active=False, summary="", progress={})
                        .on_conflict_do_nothing(index_elements=["kind"]))
        row = self._c.execute(sa.select(t.alerts).where(t.alerts.c.kind == kind.value).with_for_update()).one()
        return alert_from_row(row)

    def save(self, alert: Alert) -> None:
        values = _values(alert)
        statement = self._insert(t.alerts).values(kind=alert.kind.value, **values)
        self._c.execute(statement.on_conflict_do_update(index_elements=["kind"], set_=values))


def alert_from_row(row: sa.Row[Any]) -> Alert:
    progress = {key: (int(value), datetime.fromisoformat(at)) for key, (value, at) in row.progress.items()}
    return Alert(AlertKind(row.kind), row.active, row.summary, row.since, row.checked_at, row.notified_at, progress)


def _values(alert: Alert) -> dict[str, Any]:
    return {
        "active": alert.active, "summary": alert.summary, "since": alert.since, "checked_at": alert.checked_at,
        "notified_at": alert.notified_at,
        "progress": {key: [value, at.isoformat()] for key, (value, at) in alert.progress.items()},
    }
