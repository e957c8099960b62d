from __future__ import annotations

import asyncio
import time

from weft.application.pacing import Foreground
from weft.application.work_queue import StepWorker


async def test_background_goes_on_at_once_while_fewer_requests_than_a_burst_are_in_flight() -> None:
    foreground = Foreground(busy_at=2, max_wait=5.0)
    foreground.enter()
    started = time.monotonic()
    await foreground.lull()
    assert time.monotonic() - started < 0.5


async def test_during_a_burst_background_waits_until_it_eases() -> None:
    foreground = Foreground(busy_at=2, max_wait=5.0)
    foreground.enter()
    foreground.enter()
    waiting = asyncio.ensure_future(foreground.lull())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    foreground.leave()
    await asyncio.wait_for(waiting, timeout=1.0)


async def test_a_burst_that_does_not_ease_holds_background_back_only_max_wait() -> None:
    foreground = Foreground(busy_at=1, max_wait=0.05)
    foreground.enter()
    started = time.monotonic()
    await foreground.lull()
    assert 0.04 <= time.monotonic() - started < 1.0


async def test_a_step_worker_takes_one_step_per_max_wait_during_a_burst() -> None:
    foreground = Foreground(busy_at=1, max_wait=0.05)
    steps: list[float] = []

    async def step() -> int:
        steps.append(time.monotonic())
        return 1 if len(steps) < 4 else 0

    worker = StepWorker("test", step, foreground=foreground)
    assert await worker.drain() == 3  # quiet: every step at once
    assert steps[-1] - steps[0] < 0.04
    steps.clear()
    foreground.enter()
    assert await worker.drain() == 3
    assert min(b - a for a, b in zip(steps, steps[1:], strict=False)) >= 0.04


def test_watchers_hear_when_a_burst_starts_and_when_it_eases_once_each() -> None:
    foreground = Foreground(busy_at=2)
    heard: list[bool] = []
    foreground.watch(heard.append)
    foreground.enter()
    foreground.enter()
    foreground.enter()
    foreground.leave()
    foreground.leave()
    foreground.leave()
    assert heard == [True, False]
