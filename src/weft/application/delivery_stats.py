"""SMS and email delivery over the last hours, in hourly buckets (the seed's delivery monitoring)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import attrs

from weft.domain.journey import StepRecord
from weft.domain.messages import DeliveryState, DeliveryStatus

OUTCOMES = ("pending", "sent", "delivered", "failed")
"""Each message counts once: waiting to go; accepted by the provider with no final report yet; reported delivered;
refused, expired, or reported undelivered or failed."""


@attrs.frozen
class Outcome:
    """Where one message queued in the window stands now: `channel` sms or email, `at` when it was queued."""

    channel: str
    at: datetime
    outcome: str


def sms_outcome(status: DeliveryStatus, state: DeliveryState | None) -> str | None:
    """None for a message that was never meant to go (suppressed by an opt-out)."""
    if status is DeliveryStatus.PENDING:
        return "pending"
    if status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED):
        return "failed"
    if status is DeliveryStatus.SENT:
        if state is DeliveryState.DELIVERED:
            return "delivered"
        return "failed" if state is not None and state.failed else "sent"
    return None


def email_outcome(record: StepRecord | None) -> str:
    """Where a journey's welcome email stands (its EMAIL_SENT step)."""
    if record is None or record.waiting or (not record.ok and record.transient):
        return "pending"
    return "sent" if record.ok else "failed"


def delivery_stats(outcomes: Iterable[Outcome], now: datetime, hours: int) -> dict[str, Any]:
    """Counts per channel for the whole window and per hour (oldest first), with the success rate: messages the
    provider took and did not report failed, of all that were attempted (None before any was)."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    buckets = {channel: [dict.fromkeys(OUTCOMES, 0) for _ in range(hours)] for channel in ("sms", "email")}
    for o in outcomes:
        index = int((o.at - start).total_seconds() // 3600)
        if 0 <= index < hours and o.channel in buckets:
            buckets[o.channel][index][o.outcome] += 1
    return {
        "hours": hours, "since": start.isoformat(), "until": end.isoformat(),
        **{channel: _channel(rows, start) for channel, rows in buckets.items()},
    }


def _channel(rows: list[dict[str, int]], start: datetime) -> dict[str, Any]:
    total = {outcome: sum(row[outcome] for row in rows) for outcome in OUTCOMES}
    return {
        **total, "success_rate": _rate(total),
        "hourly": [{"hour": (start + timedelta(hours=i)).isoformat(), **row, "success_rate": _rate(row)}
                   for i, row in enumerate(rows)],
    }


def _rate(counts: dict[str, int]) -> float | None:
    took = counts["sent"] + counts["delivered"]
    attempted = took + counts["failed"]
    return round(took / attempted, 4) if attempted else None
