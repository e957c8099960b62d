"""The one background runtime of a Weft process, used by `weft serve` and `weft worker` alike.

Threads and processes. Everything below runs on the process's one asyncio event loop, as tasks:
- the inbound worker, which applies stored inbound texts (keywords, consent, replies) a batch per commit;
- six queue workers (seven with Airtable), one per kind of durable work that calls a provider, all the same
  claim/lease/retry loop (QueueWorker):
  the outbox's priority lane (answers to a member's own text, journey texts), the outbox's broadcast lane (the
  monthly care message), payment events (Stripe webhooks stored on receipt, applied at Stripe's pace), journeys
  (welcome email and access), subscription cancellations, and campaigns (who gets this month's message); with
  Airtable configured, a seventh pushes the queued copies of numbers and payments to the organisers' base
  (pyairtable's calls run on asyncio's default thread pool, never on the loop);
- the lease heartbeat, which renews every claim this process holds every `lease / 3` seconds, so a process that
  dies (kill -9, power loss) lets its work go to another within the lease (WEFT_LEASE_SECONDS, 20 s);
- the APScheduler jobs that fire the monthly run, check the alerts every WEFT_ALERT_CHECK_SECONDS and, with Bird
  configured, run the automation sync every WEFT_SYNC_INTERVAL_MINUTES (unless WEFT_SCHEDULER=off).
Off the loop: the SQL store's writer thread (every commit, grouped) and asyncio's default thread pool (reads).
While the runtime runs, the interpreter switches threads every 0.5 ms instead of 5 ms: SQLite's driver lets go of
the GIL at every statement, and with the loop busy sending, each statement of a commit would otherwise wait up to
5 ms to get it back, which is most of a webhook's latency during a monthly run. During a burst of requests (8 or
more at once) it goes back to 5 ms, so the loop answering them is not interrupted every 0.5 ms.

`weft serve` runs this runtime inside the web process on SQLite (one writer: a second process would starve for
the write lock); otherwise it starts one `weft worker` child process that runs it, restarted whenever it dies
(the test-mode checkout keeps its sessions in the database, so either process can complete them). Any number of
instances may run it against one PostgreSQL database: claims in the database keep each item with one worker, and
only the holder of the broadcast lease sends the broadcast lane, so the configured pace holds for the whole account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from functools import partial

from weft.application.unit_of_work import Lease, Transaction
from weft.application.work_queue import BackgroundLoop
from weft.config import monthly_trigger
from weft.containers import Container, background_workers
from weft.entrypoints.scheduler import MonthlyScheduler

log = logging.getLogger(__name__)

SWITCH_INTERVAL_SECONDS = 0.0005
BURST_SWITCH_INTERVAL_SECONDS = 0.005
"""During a burst of requests (Foreground.busy) the loop answering them keeps the GIL for Python's usual 5 ms:
handing it to the writer thread every 0.5 ms costs a fifth of the webhook rate (1,100 -> 1,450 a second)."""


class Runtime:
    """Starts and stops the queue workers, the lease heartbeat and the monthly scheduler of one process."""

    def __init__(self, container: Container, scheduler: bool | None = None) -> None:
        self._container = container
        settings = container.settings()
        self._workers: list[BackgroundLoop] = background_workers(container)
        self._heartbeat: asyncio.Task[None] | None = None
        self._switch_interval = sys.getswitchinterval()
        self._watching = self._running = False
        self._scheduler = MonthlyScheduler(
            monthly_trigger(settings), container.start_monthly_care(), container.views(), container.clock(),
            settings.time_zone,
            sync=container.sync_bird() if settings.bird_sync_available else None,
            sync_minutes=settings.sync_interval_minutes,
            alerts=container.check_alerts(), alert_seconds=settings.alert_check_seconds,
        ) if (settings.scheduler if scheduler is None else scheduler) else None

    def register(self) -> None:
        """Let the use cases wake these workers after their commits."""
        wakeups = self._container.wakeups()
        for worker in self._workers:
            wakeups.register(worker.name, worker.wake)

    async def start(self) -> None:
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        if not self._watching:
            self._container.foreground().watch(self._switch_for_burst)
            self._watching = True
        self._running = True
        self.register()
        for worker in self._workers:
            worker.start()
        self._heartbeat = asyncio.get_running_loop().create_task(self._renew_leases(), name="weft-heartbeat")
        if self._scheduler is not None:
            await self._scheduler.start()
        log.info("background work running: %s%s", ", ".join(w.name for w in self._workers),
                 ", monthly scheduler" if self._scheduler else "")

    async def stop(self) -> None:
        """The scheduler first, then each worker finishes and records the batch in hand, then the heartbeat."""
        if self._scheduler is not None:
            self._scheduler.stop()
        for worker in self._workers:
            await worker.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        self._container.wakeups().clear()
        self._running = False
        sys.setswitchinterval(self._switch_interval)

    def _switch_for_burst(self, busy: bool) -> None:
        if self._running:
            sys.setswitchinterval(BURST_SWITCH_INTERVAL_SECONDS if busy else SWITCH_INTERVAL_SECONDS)

    async def drain(self) -> int:
        """Run every worker until nothing is due now (for the CLI); returns how many items were handled."""
        total = 0
        while handled := sum([await worker.drain() for worker in self._workers]):
            total += handled
        return total

    async def _renew_leases(self) -> None:
        lease = self._container.lease_settings()
        store, clock = self._container.store(), self._container.clock()
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                await store.transaction(partial(_renew, lease=lease.lease(clock.now())))
            except Exception:  # the next beat tries again; a lapsed lease only means the work may move
                log.exception("renewing leases failed")


def _renew(tx: Transaction, lease: Lease) -> None:
    tx.leases.renew(lease.owner, lease.until)
