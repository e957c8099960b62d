from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from weft.application.handle_payment_event import HandlePaymentEvent
from weft.application.ports import Clock
from weft.application.unit_of_work import Lease, ReceivedEvent, Transaction
from weft.application.work_queue import RetryPolicy
from weft.domain.errors import PaymentProviderThrottled, PaymentProviderUnavailable

log = logging.getLogger(__name__)


class ProcessPaymentEvents:
    """Apply stored payment events (LeasedWork): each is re-read from the provider and applied once. A 429 puts
    the event back in its place without counting an attempt and holds the work for the time asked; an outage is
    retried with backoff until the provider answers."""

    name = "payment-events"

    def __init__(self, handle: HandlePaymentEvent, clock: Clock, policy: RetryPolicy, batch: int = 20,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._handle, self._clock, self._policy, self._batch = handle, clock, policy, batch
        self._monotonic = monotonic
        self._paused_until = 0.0

    def batch_size(self) -> int:
        return 0 if self._monotonic() < self._paused_until else self._batch

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[ReceivedEvent]:
        return tx.received_events.claim(lease, now, limit)

    async def perform(self, item: ReceivedEvent) -> ReceivedEvent:
        try:
            await self._handle(item.event)
        except PaymentProviderThrottled as exc:
            # Due as it was (claims return the row as before the claim), so it keeps its place in a backlog.
            self._paused_until = max(self._paused_until, self._monotonic() + exc.retry_after)
            return attrs.evolve(item, error=str(exc))
        except PaymentProviderUnavailable as exc:
            return self._retry_later(item, str(exc))
        now = self._clock.now()
        return attrs.evolve(item, status="processed", attempts=item.attempts + 1, next_attempt_at=None, error=None,
                            processed_at=now)

    def failed(self, item: ReceivedEvent, error: Exception) -> ReceivedEvent:
        return self._retry_later(item, f"raised {type(error).__name__}: {error}")

    def record(self, tx: Transaction, outcomes: list[ReceivedEvent], now: datetime) -> None:
        for received in outcomes:
            tx.received_events.save(received)
            if received.status == "pending":
                log.warning("payment event %s (%s) not applied yet, will retry: %s", received.event.id,
                            received.event.type, received.error)

    def after_commit(self, outcomes: list[ReceivedEvent]) -> None:
        pass

    def _retry_later(self, item: ReceivedEvent, error: str) -> ReceivedEvent:
        attempts = item.attempts + 1
        retry_at = self._policy.next_attempt(attempts, item.received_at, self._clock.now())
        # With no lifetime the policy always answers; an event is never given up, only shown as pending.
        return attrs.evolve(item, attempts=attempts, error=error,
                            next_attempt_at=retry_at or self._clock.now() + timedelta(seconds=self._policy.max_delay))
