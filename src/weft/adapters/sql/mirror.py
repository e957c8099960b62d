from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import Lease, MirrorBacklog, MirrorChange, MirrorKind

MIRROR_QUEUE = QueueTable(t.mirror_queue, "next_attempt_at")
_q = t.mirror_queue.c
_ALL_KEYS_BATCH = 1000


class SqlMirrorQueue:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        insert = dialect_insert(connection.dialect.name)(t.mirror_queue)
        self._upsert = insert.on_conflict_do_update(index_elements=["id"], set_={"version": _q.version + 1})

    def changed(self, kind: MirrorKind, keys: Sequence[str], at: datetime) -> None:
        # One lock order for every transaction (PostgreSQL): two saving overlapping records cannot deadlock.
        if keys:
            self._c.execute(self._upsert, [_entry(kind, key, at) for key in sorted(set(keys))])

    def changed_all(self, at: datetime) -> int:
        total = 0
        for kind, column in ((MirrorKind.NUMBER, t.subscribers.c.phone), (MirrorKind.PAYMENT, t.payments.c.id)):
            keys = self._c.execute(sa.select(column).order_by(column)).scalars().all()
            for start in range(0, len(keys), _ALL_KEYS_BATCH):
                self.changed(kind, keys[start:start + _ALL_KEYS_BATCH], at)
            total += len(keys)
        return total

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[MirrorChange]:
        return [_change(row) for row in MIRROR_QUEUE.claim(self._c, lease, now, limit)]

    def done(self, changes: Sequence[MirrorChange], at: datetime) -> None:
        for change in _in_lock_order(changes):
            current = _q.id == _id(change.kind, change.key)
            self._c.execute(t.mirror_queue.delete().where(current, _q.version == change.version))
            self._c.execute(t.mirror_queue.update().where(current).values(
                next_attempt_at=at, claimed_by=None, attempts=0, first_attempt_at=None, error=None, failed_at=None))

    def retry(self, changes: Sequence[MirrorChange], due: datetime, at: datetime, error: str) -> None:
        for change in _in_lock_order(changes):
            self._c.execute(t.mirror_queue.update().where(_q.id == _id(change.kind, change.key)).values(
                next_attempt_at=due, claimed_by=None, attempts=change.attempts + 1,
                first_attempt_at=change.first_attempt_at or at, error=error, failed_at=at))

    def backlog(self, now: datetime) -> MirrorBacklog:
        query = sa.select(sa.func.count(), sa.func.min(_q.queued_at),
                          sa.func.count().filter(_q.attempts > 0))
        waiting, oldest, failing = self._c.execute(query).one()
        latest = self._c.execute(sa.select(_q.error, _q.failed_at).where(_q.failed_at.is_not(None))
                                 .order_by(_q.failed_at.desc()).limit(1)).first()
        return MirrorBacklog(waiting=int(waiting), oldest=oldest, failing=int(failing or 0),
                             last_error=latest.error if latest else None,
                             last_error_at=latest.failed_at if latest else None)


def _in_lock_order(changes: Sequence[MirrorChange]) -> list[MirrorChange]:
    return sorted(changes, key=lambda c: _id(c.kind, c.key))


def _id(kind: MirrorKind, key: str) -> str:
    return f"{kind.value}:{key}"


def _entry(kind: MirrorKind, key: str, at: datetime) -> dict[str, Any]:
    return {"id": _id(kind, key), "kind": kind.value, "record_key": key, "version": 1, "attempts": 0,
            "queued_at": at, "first_attempt_at": None, "next_attempt_at": at, "claimed_by": None,
            "error": None, "failed_at": None}


def _change(row: sa.Row[Any]) -> MirrorChange:
    m = row._mapping
    return MirrorChange(MirrorKind(m["kind"]), m["record_key"], m["version"], m["attempts"], m["first_attempt_at"])
