from __future__ import annotations

from datetime import timedelta

from tests.unit.harness import PHONE, RefusingGateway, World
from weft.application.unit_of_work import Cancellation
from weft.domain.payment import PaymentStatus
from weft.domain.subscriber import Consent, Membership


async def subscribed(w: World | None = None) -> tuple[World, str]:
    """A proven member paying $10 a month; returns the world and the subscription id."""
    w = w or World()
    await w.buy("10", "monthly")
    return w, w.subscription_id()


def cancellation(w: World) -> Cancellation:
    (found,) = w.store.state.cancellations.values()
    return found


async def test_stop_from_a_paying_member_queues_the_cancellation_and_forgets_the_provider_ids() -> None:
    w, subscription_id = await subscribed()
    await w.text("STOP")
    queued, member = cancellation(w), w.store.subscriber(PHONE)
    assert (queued.subscription_id, queued.phone.e164, queued.status, queued.next_attempt_at) == (
        subscription_id, PHONE, "pending", w.clock.now())
    assert (member.stripe_customer_id, member.stripe_subscription_id) == (None, None)
    assert (member.membership, member.paid_tier, member.consent) == (Membership.FREE, None, Consent.OPTED_OUT)


async def test_unsub_queues_the_cancellation_but_keeps_the_customer_and_the_messages() -> None:
    w, subscription_id = await subscribed()
    customer_id = w.store.subscriber(PHONE).stripe_customer_id
    await w.text("UNSUB")
    member = w.store.subscriber(PHONE)
    assert cancellation(w).subscription_id == subscription_id
    assert (member.stripe_customer_id, member.stripe_subscription_id) == (customer_id, None)
    assert (member.membership, member.consent) == (Membership.FREE, Consent.SUBSCRIBED)


async def test_stop_from_a_one_time_member_queues_no_cancellation() -> None:
    w = World()
    await w.buy("10", "one_time")
    await w.text("STOP")
    assert w.store.state.cancellations == {}
    assert w.store.subscriber(PHONE).stripe_customer_id is None


async def test_stop_then_unsub_queues_one_cancellation() -> None:
    w, _ = await subscribed()
    await w.text("STOP")
    await w.text("UNSUB")
    assert len(w.store.state.cancellations) == 1


async def test_a_queued_cancellation_is_cancelled_at_the_provider_and_audited() -> None:
    w, subscription_id = await subscribed()
    await w.text("STOP")
    assert await w.cancel() == 1
    assert w.gateway.cancelled == [subscription_id]
    assert (cancellation(w).status, cancellation(w).attempts) == ("done", 1)
    (entry,) = [e for e in w.store.state.audit if e.action == "subscription.cancelled"]
    assert (entry.phone, entry.details["subscription_id"]) == (PHONE, subscription_id)


async def test_a_done_cancellation_is_not_sent_again() -> None:
    w, _ = await subscribed()
    await w.text("STOP")
    await w.cancel()
    w.clock.advance(3600)
    assert await w.cancel() == 0
    assert len(w.gateway.cancelled) == 1


async def test_an_unavailable_provider_leaves_the_cancellation_pending_until_a_later_retry() -> None:
    w, subscription_id = await subscribed()
    await w.text("STOP")
    w.gateway.unavailable = True
    await w.cancel()
    pending = cancellation(w)
    assert (pending.status, pending.attempts, pending.error) == ("pending", 1, "provider down")
    assert pending.next_attempt_at == w.clock.now() + timedelta(seconds=2)
    w.gateway.unavailable = False
    assert await w.cancel() == 0
    w.clock.advance(2)
    await w.cancel()
    assert (cancellation(w).status, cancellation(w).attempts, w.gateway.cancelled) == ("done", 2, [subscription_id])


async def test_a_cancellation_fails_once_its_retry_lifetime_has_run_out() -> None:
    w, _ = await subscribed()
    await w.text("STOP")
    w.gateway.unavailable = True
    started = w.clock.now()
    for _ in range(50):  # bounded: a regression fails here instead of hanging the suite
        if cancellation(w).status != "pending":
            break
        await w.cancel()
        w.clock.advance(600)
    assert (cancellation(w).status, cancellation(w).attempts) == ("failed", 7)
    assert w.clock.now() - started > timedelta(hours=1)
    assert w.store.actions()[-1] == "subscription.cancel_failed"


async def test_a_permanent_provider_refusal_fails_the_cancellation_at_once_and_is_audited() -> None:
    w, subscription_id = await subscribed(World(gateway=RefusingGateway()))
    await w.text("UNSUB")
    await w.cancel()
    failed = cancellation(w)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
    assert failed.error == f"no such subscription {subscription_id}"
    (entry,) = [e for e in w.store.state.audit if e.action == "subscription.cancel_failed"]
    assert entry.details["error"] == failed.error
    w.clock.advance(3600)
    assert await w.cancel() == 0


async def test_the_provider_deletion_that_follows_a_stop_cancels_the_payment() -> None:
    w, subscription_id = await subscribed()
    await w.text("STOP")
    await w.cancel()
    await w.event("customer.subscription.deleted", {"id": subscription_id})
    assert w.store.payment().status is PaymentStatus.CANCELLED
    assert w.store.subscriber(PHONE).membership is Membership.FREE
