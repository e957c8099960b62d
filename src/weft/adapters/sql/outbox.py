from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import CampaignCounts, Lease, OutboxEntry
from weft.domain.messages import (
    DeliveryReceipt,
    DeliveryState,
    DeliveryStatus,
    Lane,
    MessageKind,
    OutboundSms,
    ProviderSentSms,
)
from weft.domain.phone import PhoneNumber

OUTBOX_QUEUE = QueueTable(t.outbox, "next_attempt_at")
o = t.outbox.c

_OUTCOME = ("status", "attempts", "next_attempt_at", "provider_id", "error", "sent_at", "first_attempt_at", "in_doubt",
            "possible_duplicate")
_GET = sa.select(t.outbox).where(o.id == sa.bindparam("key"))
_COUNT_SENT = sa.select(t.sms_daily_counts.c.sent).where(t.sms_daily_counts.c.day == sa.bindparam("day"))
_REDO = (DeliveryStatus.FAILED.value, DeliveryStatus.EXPIRED.value)


class SqlOutbox:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._statements = _statements(connection.dialect)

    def enqueue_once(self, message: OutboundSms, due: datetime, at: datetime) -> bool:
        return self.enqueue_many([(message, due)], at) == 1

    def enqueue_many(self, messages: Sequence[tuple[OutboundSms, datetime]], at: datetime) -> int:
        """One multi-row INSERT per batch (not executemany, and no RETURNING): SQLite's driver then releases the
        GIL once, not once per row; the count of new rows is the statement's rowcount."""
        if not messages:
            return 0
        inserted = 0
        for start in range(0, len(messages), _RECORD_CHUNK):
            rows = [_new_row(message, due, at) for message, due in messages[start:start + _RECORD_CHUNK]]
            sql, params = self._statements.enqueue_rows(rows)
            inserted += self._c.exec_driver_sql(sql, params).rowcount
        return inserted

    def get(self, key: str) -> OutboxEntry | None:
        row = self._c.execute(_GET, {"key": key}).first()
        return None if row is None else entry_from_row(row)

    def claim(self, lane: Lane, lease: Lease, now: datetime, limit: int) -> list[OutboxEntry]:
        rows = OUTBOX_QUEUE.claim(self._c, lease, now, limit, o.status == DeliveryStatus.PENDING.value,
                                  o.lane == int(lane))
        lapsed = [row.id for row in rows if row.claimed_by is not None and not row.in_doubt]
        if lapsed:
            self._c.execute(t.outbox.update().where(o.id.in_(lapsed)).values(in_doubt=True))
        return [entry_from_row(row, in_doubt=row.in_doubt or row.claimed_by is not None) for row in rows]

    def record(self, entries: Sequence[OutboxEntry]) -> None:
        for start in range(0, len(entries), _RECORD_CHUNK):
            sql, params = self._statements.record_rows(entries[start:start + _RECORD_CHUNK])
            self._c.exec_driver_sql(sql, params)

    def requeue(self, key: str, now: datetime) -> OutboxEntry | None:
        again = t.outbox.update().where(o.id == key, o.status.in_(_REDO)).values(
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, first_attempt_at=None,
            error=None, claimed_by=None, in_doubt=False)
        if self._c.execute(again).rowcount == 0:
            return None
        return self.get(key)

    def count_claimed(self, lane: Lane, owner: str) -> int:
        query = sa.select(sa.func.count()).where(o.claimed_by == owner, o.lane == int(lane))
        return int(self._c.execute(query).scalar() or 0)

    def count_sent(self, day: str) -> int:
        return int(self._c.execute(_COUNT_SENT, {"day": day}).scalar() or 0)

    def add_sent(self, day: str, count: int) -> None:
        self._c.execute(self._statements.add_sent, {"day": day, "sent": count})

    def campaign_counts(self, campaign_id: str, now: datetime) -> CampaignCounts:
        return campaign_counts(self._c, campaign_id, now)

    def campaign_pending(self, campaign_id: str) -> bool:
        pending = sa.exists().where(o.campaign_id == campaign_id, o.status == DeliveryStatus.PENDING.value)
        return bool(self._c.execute(sa.select(pending)).scalar())

    def apply_receipts(self, receipts: Sequence[DeliveryReceipt], at: datetime) -> int:
        matched = 0
        for receipt in receipts:
            row = self._c.execute(_BY_PROVIDER_ID, {"pid": receipt.provider_id}).first()
            if row is None and receipt.reference:
                row = self._c.execute(_BY_KEY, {"key": receipt.reference}).first()
            if row is None:
                continue
            matched += 1
            when = receipt.at or at
            self._c.execute(t.delivery_receipts.insert().values(
                provider_id=receipt.provider_id, outbox_id=row.id, state=receipt.state.value,
                error_code=receipt.error_code, at=when, received_at=at))
            current = DeliveryState(row.delivery_state) if row.delivery_state else None
            if current is None or receipt.state.rank > current.rank:
                self._c.execute(t.outbox.update().where(o.id == row.id).values(
                    delivery_state=receipt.state.value, delivery_error_code=receipt.error_code, delivery_at=when,
                    provider_id=row.provider_id or receipt.provider_id))
        return matched

    def record_provider_sent(self, messages: Sequence[ProviderSentSms], at: datetime) -> int:
        if not messages:
            return 0
        ours = {pid for (pid,) in self._c.execute(
            sa.select(o.provider_id).where(o.provider_id.in_(sorted({m.provider_id for m in messages}))))}
        references = sorted({m.reference for m in messages if m.reference})
        if references:
            ours |= {key for (key,) in self._c.execute(sa.select(o.id).where(o.id.in_(references)))}
        theirs = [m for m in messages if m.provider_id not in ours and m.reference not in ours]
        if not theirs:
            return 0
        new = [(m.as_history(), m.sent_at or at) for m in theirs]
        added = self.enqueue_many(new, at)
        self.record([OutboxEntry(message=message, status=DeliveryStatus.SENT, attempts=0, created_at=at,
                                 provider_id=m.provider_id, sent_at=m.sent_at or at)
                     for (message, _), m in zip(new, theirs, strict=True)])
        return added


_BY_PROVIDER_ID = (sa.select(o.id, o.provider_id, o.delivery_state).where(o.provider_id == sa.bindparam("pid"))
                   .limit(1).with_for_update())
_BY_KEY = sa.select(o.id, o.provider_id, o.delivery_state).where(o.id == sa.bindparam("key")).with_for_update()


class SqlCursors:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def get(self, name: str) -> str | None:
        return self._c.execute(sa.select(t.sync_cursors.c.cursor).where(t.sync_cursors.c.name == name)).scalar()

    def set(self, name: str, cursor: str, at: datetime) -> None:
        insert = dialect_insert(self._c.dialect.name)(t.sync_cursors).values(name=name, cursor=cursor, updated_at=at)
        self._c.execute(insert.on_conflict_do_update(index_elements=["name"],
                                                     set_={"cursor": cursor, "updated_at": at}))


def campaign_counts(c: sa.Connection, campaign_id: str, now: datetime) -> CampaignCounts:
    duplicates = sa.func.sum(sa.case((o.possible_duplicate, 1), else_=0))
    by_status = c.execute(
        sa.select(o.status, sa.func.count(), duplicates).where(o.campaign_id == campaign_id).group_by(o.status)
    ).all()
    recent = c.execute(sa.select(sa.func.count()).where(
        o.campaign_id == campaign_id, o.status == DeliveryStatus.SENT.value, o.sent_at >= now - timedelta(minutes=1)
    )).scalar()
    return CampaignCounts(
        by_status={DeliveryStatus(status): count for status, count, _ in by_status},
        possible_duplicates=sum(int(d or 0) for _, _, d in by_status), sent_last_minute=int(recent or 0),
    )


_RECORD_CHUNK = 500


class _Statements:
    """The outbox's batch statements: one statement per batch. On SQLite, a multi-row VALUES list (its driver then
    lets go of the GIL once per batch, not once per row); on PostgreSQL, one array per column unnested (short SQL
    of one shape: psycopg parses a statement's placeholders on every execution unless it has seen its text
    before, and a 500-row VALUES list is too long for its cache)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        insert = dialect_insert(dialect.name)
        counts = insert(t.sms_daily_counts)
        self.add_sent = counts.on_conflict_do_update(
            index_elements=["day"], set_={"sent": t.sms_daily_counts.c.sent + counts.excluded.sent})
        self._postgres = dialect.name == "postgresql"
        self._to_db = {c.name: c.type._cached_bind_processor(dialect) for c in t.outbox.c}
        # Arrays of the base type (VARCHAR, not VARCHAR(64)): an explicit cast to a length would truncate silently.
        self._types = {c.name: c.type.compile(dialect=dialect).split("(")[0] for c in t.outbox.c}
        self._sql: dict[tuple[str, int], str] = {}

    def enqueue_rows(self, rows: Sequence[dict[str, Any]]) -> tuple[str, Any]:
        """One INSERT ... ON CONFLICT DO NOTHING for the rows (all with the same keys)."""
        names = list(rows[0])
        values = [[self._db(name, row[name]) for name in names] for row in rows]
        source = self._source(names, len(rows))
        sql = self._cached("enqueue", len(rows), lambda: (
            f"INSERT INTO outbox ({', '.join(names)}) {source} ON CONFLICT (id) DO NOTHING"))
        return sql, self._params(values)

    def record_rows(self, entries: Sequence[OutboxEntry]) -> tuple[str, Any]:
        """One UPDATE ... FROM for a batch of outcomes, releasing their claims."""
        names = ["id", *_OUTCOME]
        values = [[e.message.id, *(self._db(name, value) for name, value in zip(_OUTCOME, (
            e.status.value, e.attempts, e.next_attempt_at, e.provider_id, e.error, e.sent_at, e.first_attempt_at,
            e.in_doubt, e.possible_duplicate), strict=True))] for e in entries]
        source = self._source(names, len(entries))
        sets = ", ".join(f"{name} = v.{name}" for name in _OUTCOME)
        sql = self._cached("record", len(entries), lambda: (
            f"WITH v ({', '.join(names)}) AS ({source}) "
            f"UPDATE outbox SET {sets}, claimed_by = NULL FROM v WHERE outbox.id = v.id"))
        return sql, self._params(values)

    def _source(self, names: Sequence[str], rows: int) -> str:
        if self._postgres:
            return "SELECT * FROM unnest(" + ", ".join(f"%s::{self._types[name]}[]" for name in names) + ")"
        return "VALUES " + ", ".join(["(" + ", ".join("?" * len(names)) + ")"] * rows)

    def _cached(self, kind: str, rows: int, build: Callable[[], str]) -> str:
        key = (kind, 0 if self._postgres else rows)
        if key not in self._sql:
            self._sql[key] = build()
        return self._sql[key]

    def _params(self, values: list[list[Any]]) -> tuple[Any, ...]:
        if self._postgres:
            return tuple(list(column) for column in zip(*values, strict=True))
        return tuple(value for row in values for value in row)

    def _db(self, name: str, value: Any) -> Any:
        to_db = self._to_db[name]
        return value if to_db is None else to_db(value)


_BY_DIALECT: dict[str, _Statements] = {}


def _statements(dialect: sa.Dialect) -> _Statements:
    """The statements for a dialect, built once per process."""
    if dialect.name not in _BY_DIALECT:
        _BY_DIALECT[dialect.name] = _Statements(dialect)
    return _BY_DIALECT[dialect.name]


def _new_row(m: OutboundSms, due: datetime, at: datetime) -> dict[str, Any]:
    return {
        "id": m.id, "phone": m.to.e164, "text": m.text, "kind": m.kind.value, "lane": int(m.lane),
        "reply_route": m.reply_route, "journey_id": m.journey_id,
        "campaign_id": m.campaign_id, "expires_at": m.expires_at, "status": DeliveryStatus.PENDING.value,
        "attempts": 0, "next_attempt_at": due, "created_at": at, "in_doubt": False, "possible_duplicate": False,
    }


def entry_from_row(row: sa.Row[Any], in_doubt: bool | None = None) -> OutboxEntry:
    m = row._mapping
    message = OutboundSms(
        id=m["id"], to=PhoneNumber(m["phone"]), text=m["text"], kind=MessageKind(m["kind"]),
        reply_route=m["reply_route"], journey_id=m["journey_id"],
        campaign_id=m["campaign_id"], expires_at=m["expires_at"],
    )
    return OutboxEntry(
        message=message, status=DeliveryStatus(m["status"]), attempts=m["attempts"], created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"], provider_id=m["provider_id"], error=m["error"], sent_at=m["sent_at"],
        first_attempt_at=m["first_attempt_at"], possible_duplicate=bool(m["possible_duplicate"]),
        in_doubt=bool(m["in_doubt"]) if in_doubt is None else in_doubt,
        delivery_state=DeliveryState(m["delivery_state"]) if m["delivery_state"] else None,
        delivery_error_code=m["delivery_error_code"], delivery_at=m["delivery_at"],
    )
