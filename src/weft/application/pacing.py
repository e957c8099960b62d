from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from weft.domain.messages import Lane


class Pacer:
    """The rate limiter in front of the SMS provider, in segments per second, shared by every lane.

    A lane waits while a lower (more urgent) lane has a message waiting, so a STOP confirmation overtakes a
    monthly run. A lane can be paused for the time a provider asks (429, Retry-After). `rate=None` is unlimited.
    """

    def __init__(
        self,
        rate: float | None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        burst_seconds: float = 0.1,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._burst = max(self._interval, burst_seconds)
        self._monotonic, self._sleep = monotonic, sleep
        self._booked_until = 0.0
        self._paused_until: dict[Lane, float] = {}
        self._waiting: dict[Lane, int] = {lane: 0 for lane in Lane}

    @property
    def rate(self) -> float | None:
        return 1.0 / self._interval if self._interval else None

    def pause(self, lane: Lane, seconds: float) -> None:
        """Hold the lane for `seconds` (a provider asked us to slow down); a longer pause already set stays."""
        until = self._monotonic() + seconds
        self._paused_until[lane] = max(self._paused_until.get(lane, 0.0), until)

    def paused_for(self, lane: Lane) -> float:
        """Seconds left of the lane's pause, 0 when it may send."""
        return max(0.0, self._paused_until.get(lane, 0.0) - self._monotonic())

    async def acquire(self, lane: Lane, segments: int = 1) -> None:
        """Wait until this lane may hand `segments` SMS parts to the provider, then take them."""
        self._waiting[lane] += 1
        try:
            while (delay := self._delay(lane)) > 0:
                await self._sleep(delay)
        finally:
            self._waiting[lane] -= 1
        # A virtual schedule (GCRA): each send books `segments` intervals; a short burst may run ahead of it.
        self._booked_until = max(self._booked_until, self._monotonic()) + segments * self._interval

    def _delay(self, lane: Lane) -> float:
        paused = self.paused_for(lane)
        if paused > 0:
            return paused
        if any(self._waiting[other] for other in Lane if other < lane):
            return max(self._interval, 0.001)  # a more urgent message goes first
        return max(0.0, self._booked_until - self._monotonic() - self._burst)


class RateLimit:
    """Requests per second to one provider's API (a GCRA schedule), paused for as long as the provider asks."""

    def __init__(
        self,
        rate: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._monotonic, self._sleep = monotonic, sleep
        self._booked_until = 0.0
        self._paused_until = 0.0

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a 429); a longer pause already set stays."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    async def acquire(self) -> None:
        """Wait for this request's turn, then take it."""
        while (delay := max(self._paused_until, self._booked_until) - self._monotonic()) > 0:
            await self._sleep(delay)
        self._booked_until = max(self._booked_until, self._monotonic()) + self._interval


class Foreground:
    """Requests this process is answering. While a burst is in flight (at least `busy_at` at once: more than a
    quiet community ever sends together, and more than one slow checkout waiting on Stripe), background work
    waits for it to ease before each step, for at most `max_wait` seconds: a burst of webhooks is acknowledged
    first (a slow answer makes the sender time out and send again), and background work still takes a step at
    least every `max_wait`."""

    def __init__(self, busy_at: int = 8, max_wait: float = 0.25) -> None:
        self._busy_at, self._max_wait = busy_at, max_wait
        self._in_flight = 0
        self._eased: asyncio.Event | None = None
        self._watchers: list[Callable[[bool], None]] = []

    def watch(self, call: Callable[[bool], None]) -> None:
        """Call `call(busy)` whenever a burst starts (True) or eases (False)."""
        self._watchers.append(call)

    @property
    def busy(self) -> bool:
        return self._in_flight >= self._busy_at

    def enter(self) -> None:
        self._in_flight += 1
        if self._in_flight == self._busy_at:
            if self._eased is not None:
                self._eased.clear()
            for call in self._watchers:
                call(True)

    def leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == self._busy_at - 1:
            if self._eased is not None:
                self._eased.set()
            for call in self._watchers:
                call(False)

    async def lull(self) -> None:
        """Return at once unless a burst is in flight; then when it eases or `max_wait` passes."""
        if not self.busy:
            return
        if self._eased is None:
            self._eased = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eased.wait(), timeout=self._max_wait)
