from __future__ import annotations

import logging
from datetime import datetime

import attrs

from weft.application.ports import Clock, PaymentGateway
from weft.application.unit_of_work import Cancellation, Lease, Transaction
from weft.application.work_queue import RetryPolicy
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable
from weft.domain.journey import AuditEntry
from weft.domain.payment import PaymentStatus

log = logging.getLogger(__name__)


class CancelSubscriptions:
    """Cancel the provider subscriptions that STOP and UNSUB queued; transient faults are retried with backoff
    until the provider confirms or the retry lifetime runs out (then it is recorded as failed and audited)."""

    name = "cancellations"

    def __init__(self, gateway: PaymentGateway, clock: Clock, policy: RetryPolicy, batch: int = 20) -> None:
        self._gateway, self._clock, self._policy, self._batch = gateway, clock, policy, batch

    def batch_size(self) -> int:
        return self._batch

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[Cancellation]:
        return tx.cancellations.claim(lease, now, limit)

    async def perform(self, c: Cancellation) -> Cancellation:
        attempts = c.attempts + 1
        try:
            await self._gateway.cancel_subscription(c.subscription_id)
        except PaymentProviderUnavailable as exc:
            now = self._clock.now()
            retry_at = self._policy.next_attempt(attempts, c.requested_at, now)
            status = "pending" if retry_at else "failed"
            return attrs.evolve(c, status=status, attempts=attempts, error=str(exc), next_attempt_at=retry_at)
        except PaymentProviderError as exc:
            return attrs.evolve(c, status="failed", attempts=attempts, error=str(exc), next_attempt_at=None)
        return attrs.evolve(c, status="done", attempts=attempts, error=None, next_attempt_at=None)

    def failed(self, c: Cancellation, error: Exception) -> Cancellation:
        retry_at = self._policy.next_attempt(c.attempts + 1, c.requested_at, self._clock.now())
        return attrs.evolve(c, attempts=c.attempts + 1, error=f"raised {type(error).__name__}: {error}",
                            next_attempt_at=retry_at, status="pending" if retry_at else "failed")

    def record(self, tx: Transaction, outcomes: list[Cancellation], now: datetime) -> None:
        for c in outcomes:
            _record(tx, c, now)

    def after_commit(self, outcomes: list[Cancellation]) -> None:
        pass


def _record(tx: Transaction, c: Cancellation, now: datetime) -> None:
    tx.cancellations.save(c)
    payment = tx.payments.by_subscription(c.subscription_id) if c.status == "done" else None
    if payment is not None and payment.move_to(PaymentStatus.CANCELLED, now):
        tx.payments.save(payment)  # the provider's own "deleted" event, when it comes, then changes nothing
    if c.status != "pending":
        action = "subscription.cancelled" if c.status == "done" else "subscription.cancel_failed"
        tx.audit.add(AuditEntry(action, now, c.phone.e164, None, {"subscription_id": c.subscription_id,
                                                                   "attempts": c.attempts, "error": c.error}))
    else:
        log.warning("cancelling subscription %s failed, will retry: %s", c.subscription_id, c.error)
