from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
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


class SqlDashboard:
    """The Dashboard port: aggregate queries, each on a pooled connection in a worker thread."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    async def member_figures(self, since: datetime, now: datetime) -> MemberFigures:
        return await self._read(lambda c: _member_figures(c, since, now))

    async def delivery(self, since: datetime, now: datetime, hourly: bool) -> list[DeliveryBucket]:
        return await self._read(lambda c: _delivery(c, since, now, hourly))

    async def emails(self, since: datetime) -> DeliveryBucket:
        return await self._read(lambda c: _emails(c, since))

    async def _read(self, query: Callable[[sa.Connection], T]) -> T:
        def run() -> T:
            with self._engine.connect() as connection:
                return query(connection)

        return await asyncio.to_thread(run)


def _member_figures(c: sa.Connection, since: datetime, now: datetime) -> MemberFigures:
    tiers: dict[str, int] = dict(c.execute(sa.select(sa.func.coalesce(_s.paid_tier, _s.membership), sa.func.count())
                           .group_by(sa.func.coalesce(_s.paid_tier, _s.membership))).all())
    free = int(tiers.pop("free", 0))
    opted_out = c.execute(sa.select(sa.func.count()).where(_s.consent == "opted_out")).scalar_one()
    p = t.payments.c
    revenue = c.execute(sa.select(sa.func.coalesce(sa.func.sum(p.amount_cents), 0)).where(
        p.status == "active", p.payment_type == "monthly")).scalar_one()
    h = t.consent_history.c
    return MemberFigures(
        members=free + sum(tiers.values()), free=free, paid_by_tier={k: int(v) for k, v in sorted(tiers.items())},
        opted_out=int(opted_out), monthly_revenue_cents=int(revenue),
        joins=_per_day(c, _s.created_at, since, now),
        opt_outs=_per_day(c, h.at, since, now, h.consent == "opted_out"),
        failed_journeys=int(c.execute(sa.select(sa.func.count()).where(
            t.journeys.c.has_failed_step.is_(True))).scalar_one()),
        failed_messages=int(c.execute(sa.select(sa.func.count()).where(
            _o.created_at >= since, _o.status.in_(["failed", "expired"]))).scalar_one()),
    )


def _per_day(c: sa.Connection, at: sa.ColumnElement[Any], since: datetime, now: datetime,
             *where: sa.ColumnElement[bool]) -> list[DayCount]:
    day = _bucket(c, at, hourly=False)
    counts = {_as_date(d): int(n) for d, n in c.execute(
        sa.select(day, sa.func.count()).where(at >= since, *where).group_by(day))}
    first, last = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    return [DayCount(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
            for i in range((last - first).days + 1)]


def _delivery(c: sa.Connection, since: datetime, now: datetime, hourly: bool) -> list[DeliveryBucket]:
    bucket = _bucket(c, _o.created_at, hourly)
    rows = c.execute(sa.select(bucket, _o.status, _o.delivery_state, sa.func.count()).where(
        _o.created_at >= since, _o.kind != MessageKind.SENT_BY_PROVIDER.value,
    ).group_by(bucket, _o.status, _o.delivery_state))
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = _floor(since, hourly)
    buckets = {start + i * step: DeliveryBucket(start + i * step)
               for i in range(int((_floor(now, hourly) - start) / step) + 1)}
    for raw, status, state, count in rows:
        key = _as_start(raw, hourly)
        outcome = sms_outcome(DeliveryStatus(status), DeliveryState(state) if state else None)
        if outcome is not None and key in buckets:
            buckets[key] = buckets[key].add(outcome, int(count))
    return list(buckets.values())


def _emails(c: sa.Connection, since: datetime) -> DeliveryBucket:
    total = DeliveryBucket(since)
    for row in c.execute(sa.select(t.journeys).where(t.journeys.c.started_at >= since)):
        total = total.add(email_outcome(journey_from_row(row).steps.get(Step.EMAIL_SENT)), 1)
    return total


def _bucket(c: sa.Connection, at: sa.ColumnElement[Any], hourly: bool) -> sa.ColumnElement[Any]:
    """The hour or day (UTC; the columns hold naive UTC) as text, the same on SQLite and PostgreSQL."""
    if c.dialect.name == "postgresql":
        return sa.func.to_char(at, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d %H" if hourly else "%Y-%m-%d", at)


def _as_date(value: str) -> date:
    return date.fromisoformat(value)


def _as_start(value: str, hourly: bool) -> datetime:
    text = f"{value}:00" if hourly else f"{value} 00:00"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _floor(at: datetime, hourly: bool) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at if hourly else at.replace(hour=0)
