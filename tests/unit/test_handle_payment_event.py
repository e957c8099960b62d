from __future__ import annotations

import attrs
import pytest

from tests.unit.harness import EMAIL, PHONE, World
from weft.application.handle_payment_event import EventOutcome
from weft.application.ports import CustomerRecord, SessionState, SubscriptionState
from weft.domain.errors import PaymentProviderUnavailable
from weft.domain.journey import Step
from weft.domain.messages import MessageKind
from weft.domain.payment import PaymentStatus
from weft.domain.subscriber import Membership
from weft.domain.tiers import PaymentType

COMPLETED = "checkout.session.completed"


@pytest.fixture
def w() -> World:
    return World()


async def subscribed(w: World) -> str:
    """A proven member who bought a $10 monthly subscription; returns the subscription id."""
    await w.buy("10", "monthly")
    return w.subscription_id()


def dashboard_session(w: World, phone: str | None = None, customer_phone: str | None = None,
                      metadata: dict[str, str] | None = None) -> str:
    """A paid session someone opened in the provider's dashboard, not through Weft."""
    w.gateway.customers["cus_dash"] = CustomerRecord("cus_dash", "dash@example.org", customer_phone)
    w.gateway.sessions["cs_dash"] = SessionState(
        "cs_dash", "complete", "paid", "payment", "cus_dash", None, phone, "dash@example.org", 4200, metadata or {})
    return "cs_dash"


async def test_a_completed_one_time_checkout_completes_the_payment(w: World) -> None:
    await w.sign_up("25", payment_type="one_time")
    assert await w.pay(w.session_id()) is EventOutcome.PROCESSED
    assert w.store.payment().status is PaymentStatus.COMPLETED
    assert "payment.completed" in w.store.actions()


async def test_a_completed_checkout_makes_a_paid_member_with_the_customer_id(w: World) -> None:
    await w.sign_up("25", payment_type="one_time")
    await w.pay(w.session_id())
    member = w.store.subscriber(PHONE)
    (customer_id,) = w.gateway.customers
    assert (member.membership, member.paid_tier, member.email, member.stripe_customer_id) == (
        Membership.PAID, "25", EMAIL, customer_id)


async def test_a_completed_checkout_starts_the_journey(w: World) -> None:
    await w.sign_up("25", payment_type="one_time")
    await w.pay(w.session_id())
    journey = w.store.journey()
    assert journey.payment_id == w.store.payment().id
    assert journey.succeeded(Step.PAYMENT_PROCESSED) and journey.succeeded(Step.DATABASE_UPDATED)
    assert w.store.state.journeys[journey.id][1] == w.clock.now()


async def test_a_completed_subscription_is_active_with_its_id_on_payment_and_member(w: World) -> None:
    subscription_id = await subscribed(w)
    payment, member = w.store.payment(), w.store.subscriber(PHONE)
    assert (payment.status, payment.subscription_id) == (PaymentStatus.ACTIVE, subscription_id)
    assert member.stripe_subscription_id == subscription_id


async def test_a_redelivered_event_is_a_duplicate_and_changes_nothing(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    w.gateway.complete(w.session_id(), phone=PHONE)
    await w.event(COMPLETED, {"id": w.session_id()}, event_id="evt_same")
    before = (w.store.actions(), w.store.payment(), w.store.journey())
    assert await w.event(COMPLETED, {"id": w.session_id()}, event_id="evt_same") is EventOutcome.DUPLICATE
    assert (w.store.actions(), w.store.payment(), w.store.journey()) == before


async def test_the_same_session_completed_again_under_a_new_event_starts_no_second_journey(w: World) -> None:
    session_id = await w.buy("10")
    assert await w.event("checkout.session.async_payment_succeeded", {"id": session_id}) is EventOutcome.PROCESSED
    assert len(w.store.state.journeys) == 1
    assert w.store.actions().count("payment.completed") == 1


async def test_a_payload_claiming_paid_is_not_trusted_when_the_session_is_unpaid(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    w.gateway.complete(w.session_id(), phone=PHONE, paid=False)
    await w.event(COMPLETED, {"id": w.session_id(), "payment_status": "paid", "status": "complete"})
    assert w.store.payment().status is PaymentStatus.PROCESSING
    assert w.store.state.journeys == {}
    assert w.store.state.subscribers == {}


async def test_a_processing_payment_completes_when_the_async_payment_succeeds(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    await w.pay(w.session_id(), paid=False)
    await w.pay(w.session_id(), event_type="checkout.session.async_payment_succeeded")
    assert w.store.payment().status is PaymentStatus.COMPLETED
    assert len(w.store.state.journeys) == 1


async def test_a_failed_async_payment_marks_the_payment_failed(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    await w.pay(w.session_id(), paid=False)
    await w.pay(w.session_id(), event_type="checkout.session.async_payment_failed", paid=False)
    assert w.store.payment().status is PaymentStatus.FAILED
    assert w.store.state.journeys == {}
    assert "payment.failed" in w.store.actions()


async def test_an_expired_session_expires_a_pending_payment(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    await w.event("checkout.session.expired", {"id": w.session_id()})
    assert w.store.payment().status is PaymentStatus.EXPIRED


async def test_an_expired_event_does_not_touch_a_completed_payment(w: World) -> None:
    session_id = await w.buy("10")
    await w.event("checkout.session.expired", {"id": session_id})
    assert w.store.payment().status is PaymentStatus.COMPLETED
    assert "payment.expired" not in w.store.actions()


async def test_a_session_weft_did_not_open_is_recorded_with_the_phone_the_session_gives(w: World) -> None:
    session_id = dashboard_session(w, phone=PHONE, customer_phone="+14155550199")
    await w.event(COMPLETED, {"id": session_id})
    payment = w.store.payment()
    assert (payment.phone.e164, payment.checkout_session_id, payment.status) == (
        PHONE, session_id, PaymentStatus.COMPLETED)
    assert (payment.amount_cents, payment.tier, payment.payment_type, payment.email) == (
        4200, "custom", PaymentType.ONE_TIME, "dash@example.org")
    assert w.store.subscriber(PHONE).membership is Membership.PAID


async def test_a_session_without_a_phone_takes_the_customer_phone(w: World) -> None:
    session_id = dashboard_session(w, customer_phone=PHONE, metadata={"phone": "+14155550199"})
    await w.event(COMPLETED, {"id": session_id})
    assert w.store.payment().phone.e164 == PHONE


async def test_a_session_and_customer_without_a_phone_fall_back_to_the_metadata_phone(w: World) -> None:
    session_id = dashboard_session(w, metadata={"phone": PHONE, "tier": "50"})
    await w.event(COMPLETED, {"id": session_id})
    payment = w.store.payment()
    assert (payment.phone.e164, payment.tier) == (PHONE, "50")


async def test_a_foreign_session_without_any_phone_is_audited_as_unmatched(w: World) -> None:
    session_id = dashboard_session(w)
    assert await w.event(COMPLETED, {"id": session_id}) is EventOutcome.PROCESSED
    assert w.store.state.payments == {}
    assert w.store.actions() == ["payment.unmatched"]


async def test_a_paid_invoice_renews_the_subscription(w: World) -> None:
    subscription_id = await subscribed(w)
    invoice = {"id": "in_1", "parent": {"subscription_details": {"subscription": subscription_id}}}
    await w.event("invoice.paid", invoice)
    assert w.store.payment().status is PaymentStatus.ACTIVE
    assert w.store.actions()[-1] == "subscription.renewed"


async def test_an_invoice_with_the_legacy_top_level_subscription_is_understood(w: World) -> None:
    subscription_id = await subscribed(w)
    await w.event("invoice.paid", {"id": "in_1", "subscription": subscription_id})
    assert w.store.actions()[-1] == "subscription.renewed"


async def test_an_invoice_without_a_subscription_is_recorded_as_unresolved(w: World) -> None:
    await subscribed(w)
    await w.event("invoice.paid", {"id": "in_1"})
    assert w.store.actions()[-1] == "payment_event.unresolved"


def provider_status(w: World, subscription_id: str, status: str) -> None:
    """What Stripe reports on the re-read: a failed renewal makes the subscription past_due there first."""
    w.gateway.subscriptions[subscription_id] = attrs.evolve(w.gateway.subscriptions[subscription_id], status=status)


async def test_a_failed_invoice_makes_the_subscription_past_due_and_tells_the_member_once(w: World) -> None:
    subscription_id = await subscribed(w)
    provider_status(w, subscription_id, "past_due")
    for _ in range(3):
        await w.event("invoice.payment_failed", {"id": "in_1", "subscription": subscription_id})
    assert w.store.payment().status is PaymentStatus.PAST_DUE
    notices = [e.message for e in w.store.messages() if e.message.kind is MessageKind.PAYMENT_NOTICE]
    assert [m.text for m in notices] == [w.replies.text("payment_failed")]
    assert notices[0].to.e164 == PHONE


async def test_a_member_is_told_again_in_a_new_past_due_spell(w: World) -> None:
    subscription_id = await subscribed(w)
    invoice = {"id": "in_1", "subscription": subscription_id}
    provider_status(w, subscription_id, "past_due")
    await w.event("invoice.payment_failed", invoice)
    provider_status(w, subscription_id, "active")
    await w.event("invoice.paid", invoice)
    provider_status(w, subscription_id, "past_due")
    await w.event("invoice.payment_failed", invoice)
    assert [e.message.kind for e in w.store.messages()].count(MessageKind.PAYMENT_NOTICE) == 2


async def test_a_member_awaiting_yes_is_not_texted_about_a_failed_payment(w: World) -> None:
    await w.buy("10", "monthly", proven=False)
    provider_status(w, w.subscription_id(), "past_due")
    await w.event("invoice.payment_failed", {"id": "in_1", "subscription": w.subscription_id()})
    assert w.store.payment().status is PaymentStatus.PAST_DUE
    assert w.store.messages() == []


async def test_a_stale_failed_invoice_after_a_successful_retry_keeps_the_member_active(w: World) -> None:
    subscription_id = await subscribed(w)
    await w.event("invoice.payment_failed", {"id": "in_1", "subscription": subscription_id})
    assert w.store.payment().status is PaymentStatus.ACTIVE
    assert w.store.messages() == []


async def test_a_late_failed_invoice_after_deletion_keeps_the_subscription_cancelled(w: World) -> None:
    subscription_id = await subscribed(w)
    await w.gateway.cancel_subscription(subscription_id)
    await w.event("customer.subscription.deleted", {"id": subscription_id})
    await w.event("invoice.payment_failed", {"id": "in_1", "subscription": subscription_id})
    assert w.store.payment().status is PaymentStatus.CANCELLED
    assert w.store.messages() == []


async def test_a_deleted_subscription_cancels_the_payment_and_returns_the_member_to_free(w: World) -> None:
    subscription_id = await subscribed(w)
    await w.gateway.cancel_subscription(subscription_id)
    await w.event("customer.subscription.deleted", {"id": subscription_id})
    member = w.store.subscriber(PHONE)
    assert w.store.payment().status is PaymentStatus.CANCELLED
    assert (member.membership, member.paid_tier, member.stripe_subscription_id) == (Membership.FREE, None, None)
    assert w.store.actions()[-2:] == ["payment.cancelled", "member.downgraded_to_free"]


async def test_an_event_for_a_subscription_weft_does_not_know_is_audited_as_unmatched(w: World) -> None:
    await subscribed(w)
    w.gateway.subscriptions["sub_other"] = SubscriptionState("sub_other", "active", "cus_other", {})
    await w.event("customer.subscription.updated", {"id": "sub_other"})
    assert w.store.actions()[-1] == "subscription.unmatched"


async def test_an_unknown_event_type_is_ignored_and_not_recorded(w: World) -> None:
    assert await w.event("charge.refunded", {"id": "ch_1"}) is EventOutcome.IGNORED
    assert (w.store.commits, w.store.state.events, w.store.state.audit) == (0, set(), [])


async def test_an_unavailable_provider_raises_and_the_event_is_processed_on_retry(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    w.gateway.complete(w.session_id(), phone=PHONE)
    w.gateway.unavailable = True
    with pytest.raises(PaymentProviderUnavailable):
        await w.event(COMPLETED, {"id": w.session_id()}, event_id="evt_1")
    assert w.store.state.events == set()
    assert w.store.payment().status is PaymentStatus.PENDING
    w.gateway.unavailable = False
    assert await w.event(COMPLETED, {"id": w.session_id()}, event_id="evt_1") is EventOutcome.PROCESSED
    assert w.store.payment().status is PaymentStatus.COMPLETED


async def test_a_permanent_provider_error_is_recorded_as_unresolved(w: World) -> None:
    assert await w.event(COMPLETED, {"id": "cs_unknown"}, event_id="evt_1") is EventOutcome.PROCESSED
    assert w.store.state.events == {"evt_1"}
    (entry,) = w.store.state.audit
    assert entry.action == "payment_event.unresolved"
    assert (entry.details["event"], entry.details["type"]) == ("evt_1", COMPLETED)
    assert "cs_unknown" in entry.details["error"]
