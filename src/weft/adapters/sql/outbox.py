from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import CampaignCounts, Lease, OutboxEntry
from weft.domain.messages import DeliveryStatus, Lane, MessageKind, OutboundSms
from weft.domain.phone import PhoneNumber

OUTBOX_QUEUE = QueueTable(t.outbox, "next_attempt_at")
o = t.outbox.c

# Built once: SQLAlchemy then reuses each statement's compiled form. Bind names differ from column names, which
# SQLAlchemy reserves for the SET clause.
_RECORD = t.outbox.update().where(o.id == sa.bindparam("b_id")).values(
    status=sa.bindparam("b_status"), attempts=sa.bindparam("b_attempts"),
    next_attempt_at=sa.bindparam("b_next_attempt_at"), provider_id=sa.bindparam("b_provider_id"),
    error=sa.bindparam("b_error"), sent_at=sa.bindparam("b_sent_at"),
    first_attempt_at=sa.bindparam("b_first_attempt_at"), in_doubt=sa.bindparam("b_in_doubt"),
    possible_duplicate=sa.bindparam("b_possible_duplicate"), claimed_by=None,
)
_GET = sa.select(t.outbox).where(o.id == sa.bindparam("key"))
_COUNT_SENT = sa.select(t.sms_daily_counts.c.sent).where(t.sms_daily_counts.c.day == sa.bindparam("day"))
_REDO = (DeliveryStatus.FAILED.value, DeliveryStatus.EXPIRED.value)


class SqlOutbox:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._statements = _statements(connection.dialect.name)

    def enqueue_once(self, message: OutboundSms, due: datetime, at: datetime) -> bool:
        return self._c.execute(self._statements.enqueue, _new_row(message, due, at)).first() is not None

    def enqueue_many(self, messages: Sequence[tuple[OutboundSms, datetime]], at: datetime) -> int:
        if not messages:
            return 0
        rows = [_new_row(message, due, at) for message, due in messages]
        return len(self._c.execute(self._statements.enqueue, rows).all())

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
        if entries:
            self._c.execute(_RECORD, [_outcome_row(e) for e in entries])

    def requeue(self, key: str, now: datetime) -> OutboxEntry | None:
        again = t.outbox.update().where(o.id == key, o.status.in_(_REDO)).values(
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, first_attempt_at=None,
            error=None, claimed_by=None, in_doubt=False)
        if self._c.execute(again).rowcount == 0:
            return None
        return self.get(key)

    def count_sent(self, day: str) -> int:
        return int(self._c.execute(_COUNT_SENT, {"day": day}).scalar() or 0)

    def add_sent(self, day: str, count: int) -> None:
        self._c.execute(self._statements.add_sent, {"day": day, "sent": count})

    def campaign_counts(self, campaign_id: str, now: datetime) -> CampaignCounts:
        return campaign_counts(self._c, campaign_id, now)


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


class _Statements:
    def __init__(self, dialect_name: str) -> None:
        insert = dialect_insert(dialect_name)
        self.enqueue = insert(t.outbox).on_conflict_do_nothing(index_elements=["id"]).returning(o.id)
        counts = insert(t.sms_daily_counts)
        self.add_sent = counts.on_conflict_do_update(
            index_elements=["day"], set_={"sent": t.sms_daily_counts.c.sent + counts.excluded.sent})


@functools.cache
def _statements(dialect_name: str) -> _Statements:
    return _Statements(dialect_name)


def _new_row(m: OutboundSms, due: datetime, at: datetime) -> dict[str, Any]:
    return {
        "id": m.id, "phone": m.to.e164, "text": m.text, "kind": m.kind.value, "lane": int(m.lane),
        "conversation_id": m.conversation_id, "channel_id": m.channel_id, "journey_id": m.journey_id,
        "campaign_id": m.campaign_id, "expires_at": m.expires_at, "status": DeliveryStatus.PENDING.value,
        "attempts": 0, "next_attempt_at": due, "created_at": at, "in_doubt": False, "possible_duplicate": False,
    }


def _outcome_row(e: OutboxEntry) -> dict[str, Any]:
    return {
        "b_id": e.message.id, "b_status": e.status.value, "b_attempts": e.attempts,
        "b_next_attempt_at": e.next_attempt_at, "b_provider_id": e.provider_id, "b_error": e.error,
        "b_sent_at": e.sent_at, "b_first_attempt_at": e.first_attempt_at, "b_in_doubt": e.in_doubt,
        "b_possible_duplicate": e.possible_duplicate,
    }


def entry_from_row(row: sa.Row[Any], in_doubt: bool | None = None) -> OutboxEntry:
    m = row._mapping
    message = OutboundSms(
        id=m["id"], to=PhoneNumber(m["phone"]), text=m["text"], kind=MessageKind(m["kind"]),
        conversation_id=m["conversation_id"], channel_id=m["channel_id"], journey_id=m["journey_id"],
        campaign_id=m["campaign_id"], expires_at=m["expires_at"],
    )
    return OutboxEntry(
        message=message, status=DeliveryStatus(m["status"]), attempts=m["attempts"], created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"], provider_id=m["provider_id"], error=m["error"], sent_at=m["sent_at"],
        first_attempt_at=m["first_attempt_at"], possible_duplicate=bool(m["possible_duplicate"]),
        in_doubt=bool(m["in_doubt"]) if in_doubt is None else in_doubt,
    )
