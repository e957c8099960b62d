"""Keeping the organisers' base in step: the queued copies of numbers and payments are pushed, ten records a
request, by one process at a time, and retried until they land."""

from __future__ import annotations

import logging
from datetime import datetime

import attrs

from weft.application.ports import Clock, OrganiserBase
from weft.application.unit_of_work import Lease, MirrorChange, MirrorKind, Transaction
from weft.application.work_queue import RetryPolicy
from weft.domain.errors import MirrorRejected, MirrorUnavailable
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Subscriber

log = logging.getLogger(__name__)

MIRROR_LEASE = "mirror"
"""Held by the one process that pushes: the base's request limit is for the whole base, not per process."""
PUSHED_CURSOR = "mirror:pushed"
BATCH = 10
REJECTED_DELAY_SECONDS = 600.0
"""A refusal (a missing field, a bad token) lasts until an organiser fixes it: ask again every ten minutes."""


@attrs.frozen
class MirrorBatch:
    """Up to ten copies of one kind, with the records as they stand now (a copy pushes the latest state)."""

    kind: MirrorKind
    changes: tuple[MirrorChange, ...]
    subscribers: tuple[Subscriber, ...] = ()
    payments: tuple[Payment, ...] = ()


@attrs.frozen
class MirrorOutcome:
    batch: MirrorBatch
    error: str | None = None
    retry_after: float = 0.0


class PushToMirror:
    """LeasedWork for the QueueWorker: claim due copies, push each batch with one upsert, record the outcome."""

    name = "mirror"

    def __init__(self, base: OrganiserBase, clock: Clock, policy: RetryPolicy, batches: int = 5,
                 rejected_delay: float = REJECTED_DELAY_SECONDS) -> None:
        self._base, self._clock, self._policy, self._batches = base, clock, policy, batches
        self._rejected_delay = rejected_delay

    def batch_size(self) -> int:
        return BATCH * self._batches

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[MirrorBatch]:
        # Read first: taking the lease is a write, and the worker looks every few seconds while nothing waits.
        if not tx.mirror.backlog(now).waiting or not tx.leases.take(MIRROR_LEASE, lease.owner, now, lease.until):
            return []
        return batches_of(tx, tx.mirror.claim(lease, now, limit), now)

    async def perform(self, batch: MirrorBatch) -> MirrorOutcome:
        try:
            if batch.kind is MirrorKind.NUMBER:
                await self._base.upsert_numbers(batch.subscribers)
            else:
                await self._base.upsert_payments(batch.payments)
        except MirrorUnavailable as exc:
            return MirrorOutcome(batch, str(exc), exc.retry_after)
        except MirrorRejected as exc:
            log.error("the organisers' base refused %d %s copies: %s", len(batch.changes), batch.kind.value, exc)
            return MirrorOutcome(batch, str(exc), self._rejected_delay)
        return MirrorOutcome(batch)

    def failed(self, batch: MirrorBatch, error: Exception) -> MirrorOutcome:
        return MirrorOutcome(batch, f"raised {type(error).__name__}: {error}")

    def record(self, tx: Transaction, outcomes: list[MirrorOutcome], now: datetime) -> None:
        for outcome in outcomes:
            changes = outcome.batch.changes
            if outcome.error is None:
                tx.mirror.done(changes, now)
                continue
            attempts = max(c.attempts for c in changes) + 1
            first = min((c.first_attempt_at or now for c in changes), default=now)
            due = self._policy.next_attempt(attempts, first, now, outcome.retry_after) or now
            tx.mirror.retry(changes, due, now, outcome.error)
        if any(o.error is None for o in outcomes):
            tx.cursors.set(PUSHED_CURSOR, now.isoformat(), now)

    def after_commit(self, outcomes: list[MirrorOutcome]) -> None:
        pass


def batches_of(tx: Transaction, changes: list[MirrorChange], now: datetime) -> list[MirrorBatch]:
    """The claimed copies in batches of ten per kind, each with its record's current state; a copy of a record
    that no longer exists has nothing to push and is done at once."""
    numbers = [c for c in changes if c.kind is MirrorKind.NUMBER]
    found = tx.members.get_many([PhoneNumber(c.key) for c in numbers])
    payments = {c.key: p for c in changes if c.kind is MirrorKind.PAYMENT and (p := tx.payments.get(c.key))}
    present = [c for c in changes if c.key in found or c.key in payments]
    if gone := [c for c in changes if c not in present]:
        tx.mirror.done(gone, now)
    batches = []
    for kind in MirrorKind:
        group = [c for c in present if c.kind is kind]
        for start in range(0, len(group), BATCH):
            chunk = tuple(group[start:start + BATCH])
            if kind is MirrorKind.NUMBER:
                batches.append(MirrorBatch(kind, chunk, subscribers=tuple(found[c.key] for c in chunk)))
            else:
                batches.append(MirrorBatch(kind, chunk, payments=tuple(payments[c.key] for c in chunk)))
    return batches
