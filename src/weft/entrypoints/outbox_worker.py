from __future__ import annotations

import asyncio
import contextlib
import logging

from weft.application.deliver_outbox import DeliverOutbox

log = logging.getLogger(__name__)


class OutboxWorker:
    """Runs outbox delivery in the background: woken after each commit that queued a message,
    and polling so retries come due and messages left pending by a crash are picked up at start."""

    def __init__(self, deliver: DeliverOutbox, poll_seconds: float = 1.0) -> None:
        self._deliver = deliver
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="weft-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self) -> int:
        """Deliver until nothing is due now; returns how many sends were attempted."""
        total = 0
        while attempted := await self._deliver():
            total += attempted
        return total

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:  # a database hiccup must not kill delivery for the life of the process
                log.exception("outbox delivery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()
