"""The organisers' overview and delivery charts: figures counted by the database, never by loading every row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

import attrs

from weft.application.delivery_stats import OUTCOMES


@attrs.frozen
class DayCount:
    day: date
    count: int


@attrs.frozen
class MemberFigures:
    members: int
    free: int
    paid_by_tier: dict[str, int]
    opted_out: int
    monthly_revenue_cents: int
    """What active monthly subscriptions bring in a month."""
    joins: list[DayCount]
    """New numbers per day over the window, oldest first, days without any included."""
    opt_outs: list[DayCount]
    failed_journeys: int
    failed_messages: int
    """Texts that failed or expired in the window."""


@attrs.frozen
class DeliveryBucket:
    """SMS queued in one hour or day, by where each stands now (see delivery_stats.OUTCOMES)."""

    start: datetime
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def success_rate(self) -> float | None:
        took = self.sent + self.delivered
        return round(took / (took + self.failed), 4) if took + self.failed else None

    def add(self, outcome: str, count: int) -> DeliveryBucket:
        assert outcome in OUTCOMES
        return attrs.evolve(self, **{outcome: getattr(self, outcome) + count})


class Dashboard(Protocol):
    async def member_figures(self, since: datetime, now: datetime) -> MemberFigures:
        """Members by tier and consent now, revenue, joins and opt-outs per day since `since`, open problems."""
        ...

    async def delivery(self, since: datetime, now: datetime, hourly: bool) -> list[DeliveryBucket]:
        """Our SMS queued since `since`, per hour or per day (UTC), oldest first, empty buckets included."""
        ...

    async def emails(self, since: datetime) -> DeliveryBucket:
        """The welcome and thank-you emails of the journeys started since `since`, by where each stands."""
        ...
