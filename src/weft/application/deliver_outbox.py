from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import attrs

from weft.application.ports import Clock, OutboxEntry, SmsSender, Store, Transaction
from weft.domain.messages import DeliveryStatus, SendResult

log = logging.getLogger(__name__)


@attrs.frozen
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 600.0
    lease: float = 600.0
    """How long a claimed message stays invisible to other workers while it is being sent."""

    def delay(self, attempts: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempts - 1))
        return max(backoff, min(retry_after or 0.0, self.max_delay))


class DeliverOutbox:
    """Send what is due in the outbox; retry transient faults with backoff, record permanent ones."""

    def __init__(
        self, store: Store, sms: SmsSender, clock: Clock, policy: RetryPolicy, batch: int = 100, concurrency: int = 8
    ) -> None:
        self._store = store
        self._sms = sms
        self._clock = clock
        self._policy = policy
        self._batch = batch
        self._concurrency = concurrency

    async def __call__(self) -> int:
        """Deliver one batch of due messages; returns how many were attempted."""
        now = self._clock.now()
        claimed = await self._store.transaction(lambda tx: self._claim(tx, now))
        if not claimed:
            return 0
        # A few sends at a time: a hundred at once only opens a hundred connections and slows every one of them.
        sending = asyncio.Semaphore(self._concurrency)
        results = await asyncio.gather(*(self._send(sending, entry) for entry in claimed))
        done = self._clock.now()
        await self._store.transaction(lambda tx: self._record(tx, claimed, list(results), done))
        return len(claimed)

    async def _send(self, sending: asyncio.Semaphore, entry: OutboxEntry) -> SendResult:
        async with sending:
            try:
                return await self._sms.send(entry.message)
            except Exception as exc:  # a sender bug must fail this message alone, not leave the batch to resend
                log.exception("sending %s raised", entry.message.id)
                return SendResult(accepted=False, error=f"sender raised {type(exc).__name__}: {exc}")

    def _claim(self, tx: Transaction, now: datetime) -> list[OutboxEntry]:
        claimed = []
        lease_until = now + timedelta(seconds=self._policy.lease)
        for entry in tx.due_messages(now, self._batch):
            subscriber = tx.get_subscriber(entry.message.to)
            if subscriber is not None and not subscriber.may_receive(entry.message.kind):
                # Consent can change between queueing and sending: the opt-out wins.
                tx.update_delivery(entry.message.id, attrs.evolve(entry, status=DeliveryStatus.SUPPRESSED))
                continue
            tx.update_delivery(entry.message.id, attrs.evolve(entry, next_attempt_at=lease_until))
            claimed.append(entry)
        return claimed

    def _record(self, tx: Transaction, claimed: list[OutboxEntry], results: list[SendResult], now: datetime) -> None:
        for entry, result in zip(claimed, results, strict=True):
            tx.update_delivery(entry.message.id, self._outcome(entry, result, now))

    def _outcome(self, entry: OutboxEntry, result: SendResult, now: datetime) -> OutboxEntry:
        attempts = entry.attempts + 1
        if result.accepted:
            return attrs.evolve(
                entry, status=DeliveryStatus.SENT, attempts=attempts, provider_id=result.provider_id,
                error=None, sent_at=now, next_attempt_at=None,
            )
        log.warning("sms %s to %s failed (attempt %d): %s", entry.message.id, entry.message.to.masked, attempts,
                    result.error)
        if result.transient and attempts < self._policy.max_attempts:
            retry_at = now + timedelta(seconds=self._policy.delay(attempts, result.retry_after))
            return attrs.evolve(entry, attempts=attempts, error=result.error, next_attempt_at=retry_at)
        return attrs.evolve(entry, status=DeliveryStatus.FAILED, attempts=attempts, error=result.error,
                            next_attempt_at=None)
