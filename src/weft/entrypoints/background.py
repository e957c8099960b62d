from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BackgroundWorker:
    """Runs one batch task in the background: woken after each commit that queued work for it, and polling so
    retries come due and work left pending by a crash is picked up at start."""

    def __init__(self, name: str, task: Callable[[], Awaitable[int]], poll_seconds: float = 1.0) -> None:
        self._name = name
        self._task_fn = task
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        return self._name

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"weft-{self._name}")

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Let the batch in hand finish (its sends recorded, so none is repeated after a restart), then stop."""
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

    async def drain(self) -> int:
        """Run the task until nothing is due now; returns how many items it handled."""
        total = 0
        while not self._stopping and (handled := await self._task_fn()):
            total += handled
        return total

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.drain()
            except Exception:  # a database hiccup must not stop background work for the life of the process
                log.exception("%s failed; retrying", self._name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

