from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

import attrs

from weft.application.deliver_outbox import RetryPolicy
from weft.application.ports import Cancellation, Clock, PaymentGateway, Store, Transaction
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable
from weft.domain.journey import AuditEntry
from weft.domain.payment import PaymentStatus

log = logging.getLogger(__name__)


class CancelSubscriptions:
    """Cancel the provider subscriptions that STOP and UNSUB queued; transient faults are retried with backoff."""

    def __init__(self, store: Store, gateway: PaymentGateway, clock: Clock, policy: RetryPolicy) -> None:
        self._store, self._gateway, self._clock, self._policy = store, gateway, clock, policy

    async def __call__(self) -> int:
        now = self._clock.now()
        lease = now + timedelta(seconds=self._policy.lease)
        due = await self._store.transaction(lambda tx: _claim(tx, now, lease))
        for cancellation in due:
            outcome = await self._cancel(cancellation)
            await self._store.transaction(partial(_record, c=outcome, now=self._clock.now()))
        return len(due)

    async def _cancel(self, c: Cancellation) -> Cancellation:
        attempts = c.attempts + 1
        try:
            await self._gateway.cancel_subscription(c.subscription_id)
        except PaymentProviderUnavailable as exc:
            if attempts >= self._policy.max_attempts:
                return attrs.evolve(c, status="failed", attempts=attempts, error=str(exc), next_attempt_at=None)
            retry_at = self._clock.now() + timedelta(seconds=self._policy.delay(attempts, None))
            return attrs.evolve(c, attempts=attempts, error=str(exc), next_attempt_at=retry_at)
        except PaymentProviderError as exc:
            return attrs.evolve(c, status="failed", attempts=attempts, error=str(exc), next_attempt_at=None)
        return attrs.evolve(c, status="done", attempts=attempts, error=None, next_attempt_at=None)


def _claim(tx: Transaction, now: datetime, lease: datetime) -> list[Cancellation]:
    due = tx.due_cancellations(now, 20)
    for c in due:
        tx.save_cancellation(attrs.evolve(c, next_attempt_at=lease))
    return due


def _record(tx: Transaction, c: Cancellation, now: datetime) -> None:
    tx.save_cancellation(c)
    payment = tx.payment_by_subscription(c.subscription_id) if c.status == "done" else None
    if payment is not None and payment.move_to(PaymentStatus.CANCELLED, now):
        tx.save_payment(payment)  # the provider's own "deleted" event, when it comes, then changes nothing
    if c.status != "pending":
        action = "subscription.cancelled" if c.status == "done" else "subscription.cancel_failed"
        tx.audit(AuditEntry(action, now, c.phone.e164, None, {"subscription_id": c.subscription_id,
                                                               "attempts": c.attempts, "error": c.error}))
    else:
        log.warning("cancelling subscription %s failed, will retry: %s", c.subscription_id, c.error)
