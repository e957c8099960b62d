from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.journeys import journey_from_row
from weft.application.dashboard import DayCount, DeliveryBucket, MemberFigures
from weft.application.delivery_stats import email_outcome, sms_outcome
from weft.domain.journey import Step
from weft.domain.messages import DeliveryState, DeliveryStatus, MessageKind

T = TypeVar("T")
_s, _o = t.subscribers.c, t.outbox.c
DELIVERY_SLICES = 4


class SqlDashboard:
    """The Dashboard port: aggregate queries, each on a pooled connection in a worker thread."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    async def member_figures(self, since: datetime, now: datetime) -> MemberFigures:
        # Each count on its own connection and thread, all at once: SQLite lets go of the GIL while it counts, so
        # the overview waits for the slowest count (the tiers, ~50 ms on 100,000 members), not for their sum.
        h, p, j = t.consent_history.c, t.payments.c, t.journeys.c
        days = asyncio.gather(
            self._read(_tiers), self._read(lambda c: _per_day(c, _s.created_at, since, now)),
            self._read(lambda c: _per_day(c, h.at, since, now, h.consent == "opted_out")))
        counts = asyncio.gather(
            self._read(lambda c: _count(c, _s.consent == "opted_out")),
            self._read(lambda c: int(c.execute(sa.select(sa.func.coalesce(sa.func.sum(p.amount_cents), 0)).where(
                p.status == "active", p.payment_type == "monthly")).scalar_one())),
            self._read(lambda c: _count(c, j.has_failed_step.is_(True), table=t.journeys)),
            self._read(lambda c: _count(c, _o.created_at >= since, _o.status.in_(["failed", "expired"]),
                                        table=t.outbox)))
        (tiers, joins, opt_outs), (opted_out, revenue, failed_journeys, failed_messages) = await asyncio.gather(
            days, counts)
        free = tiers.pop("free", 0)
        return MemberFigures(
            members=free + sum(tiers.values()), free=free, paid_by_tier=dict(sorted(tiers.items())),
            opted_out=opted_out, monthly_revenue_cents=revenue, joins=joins, opt_outs=opt_outs,
            failed_journeys=failed_journeys, failed_messages=failed_messages,
        )

    async def delivery(self, since: datetime, now: datetime, hourly: bool) -> list[DeliveryBucket]:
        # A month of sends is 100,000 rows to group: counted in slices at once (one connection and thread each),
        # as for the member figures, so the page waits for a slice, not the month.
        step = timedelta(hours=1) if hourly else timedelta(days=1)
        start, end = _floor(since, hourly), _floor(now, hourly) + step
        size = max(step, (end - start) / DELIVERY_SLICES)
        edges = [start + i * size for i in range(int((end - start) / size) + 1)] + [end]
        slices = [(a, b) for a, b in zip(edges, edges[1:], strict=False) if a < b]
        counted = await asyncio.gather(*(self._read(partial(_counts, start=a, end=b, hourly=hourly))
                                         for a, b in slices))
        buckets = {start + i * step: DeliveryBucket(start + i * step) for i in range(int((end - start) / step))}
        for rows in counted:
            for key, outcome, count in rows:
                if key in buckets:
                    buckets[key] = buckets[key].add(outcome, count)
        return list(buckets.values())

    async def emails(self, since: datetime) -> DeliveryBucket:
        return await self._read(lambda c: _emails(c, since))

    async def _read(self, query: Callable[[sa.Connection], T]) -> T:
        def run() -> T:
            with self._engine.connect() as connection:
                return query(connection)

        return await asyncio.to_thread(run)


def _tiers(c: sa.Connection) -> dict[str, int]:
    tier = sa.func.coalesce(_s.paid_tier, _s.membership)
    return {str(name): int(count) for name, count in c.execute(sa.select(tier, sa.func.count()).group_by(tier))}


def _count(c: sa.Connection, *where: sa.ColumnElement[bool], table: sa.Table = t.subscribers) -> int:
    return int(c.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _per_day(c: sa.Connection, at: sa.ColumnElement[Any], since: datetime, now: datetime,
             *where: sa.ColumnElement[bool]) -> list[DayCount]:
    day = _bucket(c, at, hourly=False)
    counts = {_as_date(d): int(n) for d, n in c.execute(
        sa.select(day, sa.func.count()).where(at >= since, *where).group_by(day))}
    first, last = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    return [DayCount(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
            for i in range((last - first).days + 1)]


def _counts(c: sa.Connection, start: datetime, end: datetime, hourly: bool) -> list[tuple[datetime, str, int]]:
    """(bucket start, outcome, count) of our SMS queued in [start, end)."""
    bucket = _bucket(c, _o.created_at, hourly)
    rows = c.execute(sa.select(bucket, _o.status, _o.delivery_state, sa.func.count()).where(
        _o.created_at >= start, _o.created_at < end, _o.kind != MessageKind.SENT_BY_PROVIDER.value,
    ).group_by(bucket, _o.status, _o.delivery_state))
    found = []
    for raw, status, state, count in rows:
        outcome = sms_outcome(DeliveryStatus(status), DeliveryState(state) if state else None)
        if outcome is not None:
            found.append((_as_start(raw, hourly), outcome, int(count)))
    return found


def _emails(c: sa.Connection, since: datetime) -> DeliveryBucket:
    total = DeliveryBucket(since)
    for row in c.execute(sa.select(t.journeys).where(t.journeys.c.started_at >= since)):
        total = total.add(email_outcome(journey_from_row(row).steps.get(Step.EMAIL_SENT)), 1)
    return total


def _bucket(c: sa.Connection, at: sa.ColumnElement[Any], hourly: bool) -> sa.ColumnElement[Any]:
    """The hour or day (UTC; the columns hold naive UTC) as text, the same on SQLite and PostgreSQL."""
    if c.dialect.name == "postgresql":
        return sa.func.to_char(at, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    # SQLite keeps these columns as text, "2026-12-03 15:30:00.000000": its prefix is the hour or the day, three
    # times cheaper per row than strftime (which parses every value), on the 100,000 rows of a month's sends.
    return sa.func.substr(at, 1, 13 if hourly else 10)


def _as_date(value: str) -> date:
    return date.fromisoformat(value)


def _as_start(value: str, hourly: bool) -> datetime:
    text = f"{value}:00" if hourly else f"{value} 00:00"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _floor(at: datetime, hourly: bool) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at if hourly else at.replace(hour=0)
