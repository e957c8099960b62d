"""Consent and money edge cases: STOP during checkout, several subscriptions, repeated unproven sign-ups."""

from __future__ import annotations

import attrs

from tests.unit.harness import PHONE, World
from weft.domain.journey import Step
from weft.domain.messages import MessageKind, SendResult
from weft.domain.payment import PaymentStatus
from weft.domain.subscriber import Consent, Membership


async def test_stop_while_paying_keeps_the_number_opted_out_and_cancels_the_new_subscription() -> None:
    w = World()
    await w.sign_up("10", payment_type="monthly", token=w.token())
    w.clock.advance(60)
    await w.text("STOP")
    w.clock.advance(60)
    await w.pay(w.session_id())
    await w.run_journeys()
    member = w.store.subscriber(PHONE)
    assert (member.consent, member.membership) == (Consent.OPTED_OUT, Membership.FREE)
    assert [m.kind for m in w.sms.sent] == [MessageKind.OPT_OUT_CONFIRMATION]
    assert w.store.journey().steps[Step.SMS_SENT].detail == "skipped: the number opted out during checkout"
    await w.cancel()
    assert w.gateway.cancelled == [w.subscription_id()]
    assert w.store.payment().status is PaymentStatus.CANCELLED


async def test_unsub_cancels_every_subscription_that_may_still_bill() -> None:
    w = World()
    first = await w.buy("5", "monthly")
    w.gateway.requests.clear()
    # A second plan Weft would not open now (it sends the member to the portal), as one made before that rule was:
    # opened at the provider itself.
    request = attrs.evolve(w.gateway.requests_made[0], idempotency_key="second", amount_cents=1000)
    second = (await w.gateway.create_checkout_session(request)).id
    await w.pay(second)
    subscriptions = {w.gateway.sessions[s].subscription_id for s in (first, second)}
    await w.text("UNSUB")
    await w.cancel()
    assert set(w.gateway.cancelled) == subscriptions
    assert {p.status for p in w.store.state.payments.values()} == {PaymentStatus.CANCELLED}


async def test_repeated_unproven_sign_ups_send_one_confirmation_request() -> None:
    w = World()
    for email in ("a@example.org", "b@example.org", "c@example.org"):
        await w.sign_up("free", email=email)
        await w.run_journeys()
    requests = [m for m in w.sms.sent if m.kind is MessageKind.CONFIRMATION_REQUEST]
    assert len(requests) == 1
    assert len(w.email.sent) == 3


TRANSIENT = SendResult(accepted=False, error="HTTP 503", transient=True)


async def test_a_transient_sms_failure_is_run_again_later_until_it_succeeds() -> None:
    w = World()
    await w.sign_up("free", token=w.token())
    w.sms.fail_next(TRANSIENT, TRANSIENT, TRANSIENT)
    await w.run_journeys()
    assert Step.SMS_SENT in w.store.journey().failed_steps
    assert await w.run_journeys() == 0
    for _ in range(3):
        w.clock.advance(300)
        await w.run_journeys()
    assert w.store.journey().completed_at is not None
    assert [m.kind for m in w.sms.sent] == [MessageKind.WELCOME]
    assert len(w.email.sent) == 1


async def test_a_permanent_sms_failure_is_not_run_again_automatically() -> None:
    w = World()
    await w.sign_up("free", token=w.token())
    w.sms.fail_next(SendResult(accepted=False, error="HTTP 422 invalid number"))
    await w.run_journeys()
    w.clock.advance(3600)
    assert await w.run_journeys() == 0
    assert w.sms.sent == []
