from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Generic, Protocol, TypeVar

import attrs

from weft.application.pacing import Foreground
from weft.application.ports import Clock
from weft.application.unit_of_work import Lease, Store, Transaction

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
OutcomeT = TypeVar("OutcomeT")


@attrs.frozen
class RetryPolicy:
    """Capped exponential backoff within a lifetime: transient faults are retried until the lifetime runs out."""

    base_delay: float = 2.0
    max_delay: float = 300.0
    lifetime: timedelta | None = timedelta(hours=24)
    """None: retry until it works (for work that must not be given up, such as applying a payment event)."""

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2.0 ** min(max(attempts - 1, 0), 30))
        return max(backoff, min(retry_after or 0.0, self.max_delay))

    def next_attempt(self, attempts: int, first_attempt_at: datetime, now: datetime,
                     retry_after: float | None = None) -> datetime | None:
        """When to try again, or None when the lifetime has run out."""
        if self.lifetime is not None and now - first_attempt_at >= self.lifetime:
            return None
        return now + timedelta(seconds=self.delay(attempts, retry_after))


@attrs.frozen
class LeaseSettings:
    """Claims last `seconds` and are renewed every `seconds / 3` while the process lives."""

    owner: str
    seconds: float = 20.0

    def lease(self, now: datetime) -> Lease:
        return Lease(self.owner, now + timedelta(seconds=self.seconds))


class LeasedWork(Protocol[ItemT, OutcomeT]):
    """One kind of durable background work for QueueWorker: claimed under a lease, performed, recorded."""

    name: str

    def batch_size(self) -> int:
        """How many items to claim now; 0 while the work may not run (a paused lane)."""
        ...

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[ItemT]:
        """Claim up to `limit` due items inside the transaction."""
        ...

    async def perform(self, item: ItemT) -> OutcomeT:
        """Do the work of one item; faults are reported in the outcome, not raised."""
        ...

    def failed(self, item: ItemT, error: Exception) -> OutcomeT:
        """The outcome for an item whose perform raised (a bug): recorded so the item is never left claimed."""
        ...

    def record(self, tx: Transaction, outcomes: list[OutcomeT], now: datetime) -> None:
        """Record outcomes and release their claims inside the transaction."""
        ...

    def after_commit(self, outcomes: list[OutcomeT]) -> None:
        """Runs on the event loop once the outcomes are durable (e.g. wake another worker)."""
        ...


class BackgroundLoop:
    """A background task that drains its work, then sleeps until woken after a commit that queued more or until
    the poll interval passes (so retries come due); stopping lets the work in hand finish."""

    def __init__(self, poll_seconds: float, foreground: Foreground | None = None) -> None:
        self._poll = poll_seconds
        self._foreground = foreground
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        raise NotImplementedError

    async def drain(self) -> int:
        """Work until nothing is due now; returns how many items were handled."""
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"weft-{self.name}")

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Let the work in hand finish and be recorded (so a restart repeats none of it), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _lull(self) -> None:
        """Let the requests in flight be answered first (see Foreground)."""
        if self._foreground is not None:
            await self._foreground.lull()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.drain()
            except Exception:  # a database hiccup must not stop background work for the life of the process
                log.exception("%s failed; retrying", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()


class StepWorker(BackgroundLoop):
    """Background work done wholly inside store transactions (no provider call, so no claim or lease): each
    step handles a batch in one commit and returns how many items it handled."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], poll_seconds: float = 1.0,
                 foreground: Foreground | None = None) -> None:
        super().__init__(poll_seconds, foreground)
        self._name, self._step = name, step

    @property
    def name(self) -> str:
        return self._name

    async def drain(self) -> int:
        total = 0
        while not self._stopping:
            await self._lull()
            if not (handled := await self._step()):
                break
            total += handled
        return total


class QueueWorker(BackgroundLoop, Generic[ItemT, OutcomeT]):
    """The one claim/lease/retry loop behind every kind of background work that calls a provider.

    It claims a batch under a short lease, performs up to `concurrency` items at a time, and records each outcome
    as soon as it is known (outcomes that finish together share one commit). It is woken after a commit that
    queued work for it and polls so retries come due; stopping lets the batch in hand finish and be recorded.
    """

    def __init__(self, work: LeasedWork[ItemT, OutcomeT], store: Store, clock: Clock, lease: LeaseSettings,
                 concurrency: int = 1, poll_seconds: float = 1.0, foreground: Foreground | None = None) -> None:
        super().__init__(poll_seconds, foreground)
        self._work, self._store, self._clock, self._lease = work, store, clock, lease
        self._concurrency = concurrency

    @property
    def name(self) -> str:
        return self._work.name

    async def drain(self) -> int:
        """Claim and perform until nothing is due now; returns how many items were handled. The next batch is
        claimed while the last items of the current one are in flight, so the work never stalls on a claim."""
        total = 0
        recorder = _Recorder(self._work, self._store, self._clock)
        try:
            claimed = [] if self._stopping else await self._claim()
            while claimed:  # what is claimed is performed, even when stopping
                total += len(claimed)
                claimed = await self._perform_batch(claimed, recorder, prefetch=True)
        finally:
            await recorder.flush()
        return total

    async def run_once(self) -> int:
        """Claim one batch and perform it; 0 when nothing was due or the work may not run now."""
        items = await self._claim()
        if items:
            recorder = _Recorder(self._work, self._store, self._clock)
            try:
                await self._perform_batch(items, recorder, prefetch=False)
            finally:
                await recorder.flush()
        return len(items)

    async def _claim(self) -> list[ItemT]:
        limit = self._work.batch_size()
        if limit <= 0 or self._stopping:
            return []
        now = self._clock.now()
        lease = self._lease.lease(now)
        return await self._store.transaction(lambda tx: self._work.claim(tx, lease, now, limit))

    async def _perform_batch(self, items: Sequence[ItemT], recorder: _Recorder[OutcomeT],
                             prefetch: bool) -> list[ItemT]:
        """Perform the batch, `concurrency` at a time; returns the next batch when `prefetch` claimed one."""
        pending = list(reversed(items))
        following: asyncio.Future[list[ItemT]] | None = None

        async def consume() -> None:
            nonlocal following
            while pending:
                item = pending.pop()
                if prefetch and following is None and len(pending) < self._concurrency:
                    following = asyncio.ensure_future(self._claim())
                await self._lull()
                recorder.add(await self._perform(item))

        await asyncio.gather(*(consume() for _ in range(min(self._concurrency, len(items)))))
        if following is not None:
            return await following
        return await self._claim() if prefetch else []

    async def _perform(self, item: ItemT) -> OutcomeT:
        try:
            return await self._work.perform(item)
        except Exception as exc:  # a bug must fail this item alone and never leave it claimed
            log.exception("%s: performing an item raised", self.name)
            return self._work.failed(item, exc)


class _Recorder(Generic[OutcomeT]):
    """Commits outcomes as they arrive; those that arrive while a commit is in flight share the next one."""

    def __init__(self, work: LeasedWork[ItemT, OutcomeT], store: Store, clock: Clock) -> None:
        self._work, self._store, self._clock = work, store, clock
        self._buffer: list[OutcomeT] = []
        self._flushing: asyncio.Task[None] | None = None

    def add(self, outcome: OutcomeT) -> None:
        self._buffer.append(outcome)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_loop())

    async def flush(self) -> None:
        while self._flushing is not None and not self._flushing.done():
            await self._flushing

    async def _flush_loop(self) -> None:
        delay = 0.1
        while self._buffer:
            batch, self._buffer = self._buffer, []
            now = self._clock.now()
            try:
                await self._store.transaction(partial(self._work.record, outcomes=batch, now=now))
            except Exception:
                # An outcome the provider gave must be recorded, or the item stays claimed: keep it and try again.
                log.exception("%s: recording %d outcomes failed; retrying in %.1f s", self._work.name, len(batch),
                              delay)
                self._buffer[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            self._work.after_commit(batch)


class Wakeups:
    """Named wake-up calls from use cases to the workers that serve them, wired without a dependency cycle:
    a use case holds `caller("outbox")`, and the runtime registers the workers when it starts them."""

    def __init__(self) -> None:
        self._calls: dict[str, list[Callable[[], None]]] = {}

    def register(self, name: str, call: Callable[[], None]) -> None:
        self._calls.setdefault(name, []).append(call)

    def clear(self) -> None:
        self._calls.clear()

    def caller(self, *names: str) -> Callable[[], None]:
        def wake() -> None:
            for name in names:
                for call in self._calls.get(name, ()):
                    call()

        return wake
