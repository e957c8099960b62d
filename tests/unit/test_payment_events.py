from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fakes import FixedClock
from tests.unit.harness import World
from weft.application.handle_payment_event import EventOutcome
from weft.application.pacing import RateLimit
from weft.application.unit_of_work import Lease
from weft.domain.payment import PaymentStatus

COMPLETED = "checkout.session.completed"


@pytest.fixture
async def w() -> World:
    world = World()
    await world.sign_up("25", payment_type="one_time", token=world.token())
    world.gateway.complete(world.session_id(), phone="+14155550123")
    return world


def received(w: World, event_id: str = "evt_1") -> dict[str, object]:
    r = w.store.state.received_events[event_id]
    return {"status": r.status, "attempts": r.attempts, "due": r.next_attempt_at, "error": r.error}


async def test_a_received_event_is_stored_and_applied_only_by_the_worker(w: World) -> None:
    assert await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1") is EventOutcome.RECEIVED
    assert (w.store.payment().status, w.gateway.calls) == (PaymentStatus.PENDING, 2)  # customer + session opened

    assert await w.process_events() == 1
    assert w.store.payment().status is PaymentStatus.COMPLETED
    assert received(w)["status"] == "processed"


async def test_a_redelivered_event_is_stored_once_and_applied_once(w: World) -> None:
    assert await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1") is EventOutcome.RECEIVED
    assert await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1") is EventOutcome.DUPLICATE
    await w.process_events()
    assert await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1") is EventOutcome.DUPLICATE
    assert await w.process_events() == 0
    assert w.store.actions().count("payment.completed") == 1


async def test_an_event_type_weft_does_not_use_is_acknowledged_and_not_stored(w: World) -> None:
    assert await w.receive("customer.created", {"id": "cus_1"}, "evt_1") is EventOutcome.IGNORED
    assert w.store.state.received_events == {}


async def test_an_outage_keeps_the_event_pending_with_its_error_and_backs_off(w: World) -> None:
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1")
    w.gateway.unavailable = True
    await w.process_events()
    assert received(w) == {"status": "pending", "attempts": 1, "due": w.clock.now() + timedelta(seconds=2),
                           "error": "provider down"}
    (shown,) = (await w.views.received_events()).items
    assert (shown.event.id, shown.error) == ("evt_1", "provider down")


async def test_an_event_is_retried_through_a_long_outage_and_applied_when_the_provider_is_back(w: World) -> None:
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1")
    w.gateway.unavailable = True
    for _ in range(40):  # three days and more of capped backoff: never given up
        await w.process_events()
        w.clock.advance(300)
    assert received(w)["status"] == "pending"
    w.gateway.unavailable = False
    await w.process_events()
    assert (received(w)["status"], w.store.payment().status) == ("processed", PaymentStatus.COMPLETED)


async def test_a_throttled_event_keeps_its_place_and_the_work_waits_the_time_asked(w: World) -> None:
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1")
    w.clock.advance(1)
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_2")
    w.gateway.throttled = 3.0
    await w.process_events()
    assert (received(w)["attempts"], received(w)["due"]) == (0, w.clock.now() - timedelta(seconds=1))
    w.gateway.throttled = None
    assert await w.process_events() == 0  # paused
    w.clock.advance(3)
    assert await w.process_events() == 2
    assert (received(w)["status"], received(w)["attempts"]) == ("processed", 1)


async def test_an_event_claimed_by_a_worker_that_died_is_applied_by_another(w: World) -> None:
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1")
    dead = Lease("worker-dead", w.clock.now() + timedelta(seconds=20))
    await w.store.transaction(lambda tx: tx.received_events.claim(dead, w.clock.now(), 10))
    assert await w.process_events() == 0  # still held
    w.clock.advance(21)
    assert await w.process_events() == 1
    assert w.store.payment().status is PaymentStatus.COMPLETED


async def test_an_event_applied_before_it_was_stored_again_changes_nothing(w: World) -> None:
    # e.g. applied by the webhook itself before the upgrade, then redelivered by the provider
    await w.event(COMPLETED, {"id": w.session_id()}, "evt_1")
    await w.receive(COMPLETED, {"id": w.session_id()}, "evt_1")
    await w.process_events()
    assert received(w)["status"] == "processed"
    assert w.store.actions().count("payment.completed") == 1


async def test_the_provider_rate_limit_spaces_requests_and_a_pause_holds_them_all() -> None:
    clock = FixedClock()
    limit = RateLimit(4, monotonic=clock.monotonic, sleep=clock.sleep)
    start = clock.monotonic()
    taken = []
    for _ in range(5):
        await limit.acquire()
        taken.append(round(clock.monotonic() - start, 3))
    assert taken == [0.0, 0.25, 0.5, 0.75, 1.0]
    limit.pause(3)
    await limit.acquire()
    assert round(clock.monotonic() - start, 3) == 4.0
