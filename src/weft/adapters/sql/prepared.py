from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa


class Prepared:
    """A write compiled once for a dialect and run straight through the driver: the inbound webhook's statements
    skip SQLAlchemy's per-execution cache lookup, parameter processing and result set-up."""

    def __init__(self, statement: sa.Insert, dialect: sa.Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self._sql = str(compiled)
        self._names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        self._positional = bool(compiled.positional)
        processors: Mapping[str, Any] = compiled._bind_processors
        self._processors = {name: processors.get(name) for name in self._names}

    def execute(self, connection: sa.Connection, values: Mapping[str, Any]) -> int:
        """Run it with one row of values; the number of rows written (0 when ON CONFLICT DO NOTHING skipped it)."""
        return connection.exec_driver_sql(self._sql, self._params(values)).rowcount

    def execute_many(self, connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        connection.exec_driver_sql(self._sql, [self._params(values) for values in rows])

    def _params(self, values: Mapping[str, Any]) -> Any:
        processed = {name: values[name] if (to_db := self._processors[name]) is None else to_db(values[name])
                     for name in self._names}
        return tuple(processed[name] for name in self._names) if self._positional else processed
