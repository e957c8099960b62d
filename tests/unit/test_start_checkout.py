from __future__ import annotations

import pytest

from tests.unit.harness import EMAIL, PHONE, PUBLIC_URL, World
from weft.domain.errors import InvalidCheckout, PaymentProviderUnavailable
from weft.domain.journey import Step
from weft.domain.payment import PaymentStatus
from weft.domain.subscriber import Consent, Membership
from weft.domain.tiers import PaymentType


@pytest.fixture
def w() -> World:
    return World()


async def test_a_free_sign_up_records_a_completed_payment_and_goes_to_the_success_page(w: World) -> None:
    result = await w.sign_up("free")
    payment = w.store.payment()
    assert (payment.status, payment.tier, payment.amount_cents, payment.email) == (
        PaymentStatus.COMPLETED, "free", 0, EMAIL)
    assert result.url is None
    assert result.redirect == f"/success?session_id={payment.checkout_session_id}"
    assert payment.checkout_session_id == f"free_{payment.id}"


async def test_a_free_sign_up_records_a_free_member_with_their_email(w: World) -> None:
    await w.sign_up("free")
    member = w.store.subscriber(PHONE)
    assert (member.membership, member.paid_tier, member.email) == (Membership.FREE, None, EMAIL)


async def test_a_free_sign_up_starts_a_journey_that_is_due_now(w: World) -> None:
    await w.sign_up("free")
    journey, next_run_at = next(iter(w.store.state.journeys.values()))
    assert journey.payment_id == w.store.payment().id
    assert set(journey.steps) == {Step.PAYMENT_PROCESSED, Step.DATABASE_UPDATED}
    assert journey.to_run() == [Step.EMAIL_SENT, Step.SMS_SENT, Step.CUSTOMER_ACCESS_GRANTED]
    assert next_run_at == w.clock.now()


async def test_a_free_sign_up_is_audited(w: World) -> None:
    await w.sign_up("free")
    assert w.store.actions() == ["signup.free", "journey.payment_processed", "journey.database_updated"]


async def test_a_free_sign_up_never_touches_the_payment_provider(w: World) -> None:
    w.gateway.unavailable = True
    await w.sign_up("free")
    assert w.gateway.customers == {}
    assert w.store.payment().status is PaymentStatus.COMPLETED


async def test_a_sign_up_with_a_valid_link_token_subscribes_the_member(w: World) -> None:
    await w.sign_up("free", token=w.token())
    assert w.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert w.store.payment().phone_proven


async def test_a_sign_up_without_a_token_waits_for_yes(w: World) -> None:
    await w.sign_up("free")
    assert w.store.subscriber(PHONE).consent is Consent.PENDING
    assert not w.store.payment().phone_proven


async def test_a_token_issued_for_another_number_does_not_prove_the_phone(w: World) -> None:
    await w.sign_up("free", token=w.token("+14155550199"))
    assert w.store.subscriber(PHONE).consent is Consent.PENDING


async def test_a_number_that_texted_in_before_is_proven_without_a_token(w: World) -> None:
    await w.text("hello")
    await w.sign_up("free")
    assert w.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert w.store.payment().phone_proven


async def test_a_web_sign_up_without_a_token_does_not_undo_an_opt_out(w: World) -> None:
    await w.text("STOP")
    await w.sign_up("free")
    assert w.store.subscriber(PHONE).consent is Consent.OPTED_OUT


async def test_a_link_token_texted_before_an_opt_out_does_not_undo_it(w: World) -> None:
    await w.text("LOVE")
    token = w.token()
    await w.text("STOP")
    w.clock.advance(60)
    await w.sign_up("free", token=token)
    assert w.store.subscriber(PHONE).consent is Consent.OPTED_OUT
    assert not w.store.payment().phone_proven
    assert w.store.payment().status.value == "completed"


async def test_the_phone_is_normalised_from_national_format(w: World) -> None:
    await w.sign_up("free", phone="(415) 555-0123")
    assert w.store.payment().phone.e164 == PHONE


async def test_the_email_is_normalised_to_lower_case(w: World) -> None:
    await w.sign_up("free", email="  Ada@Example.ORG ")
    assert w.store.payment().email == EMAIL
    assert w.store.subscriber(PHONE).email == EMAIL


async def test_a_paid_sign_up_returns_the_provider_checkout_url(w: World) -> None:
    result = await w.sign_up("25", payment_type="one_time")
    assert result.redirect is None
    assert result.url == f"https://checkout.test/{w.session_id()}"


async def test_a_paid_sign_up_finds_or_creates_the_provider_customer(w: World) -> None:
    await w.sign_up("25", payment_type="one_time")
    (customer,) = w.gateway.customers.values()
    assert (customer.email, customer.phone) == (EMAIL, PHONE)
    assert w.gateway.requests[w.session_id()].customer_id == customer.id


async def test_a_one_time_checkout_asks_for_the_amount_in_cents_once(w: World) -> None:
    await w.sign_up("custom", amount="37", payment_type="one_time")
    request = w.gateway.requests[w.session_id()]
    assert (request.amount_cents, request.monthly) == (3700, False)
    assert request.metadata == {"phone": PHONE, "tier": "custom", "payment_type": "one_time"}


async def test_a_monthly_checkout_asks_for_a_subscription(w: World) -> None:
    await w.sign_up("50", payment_type="monthly")
    request = w.gateway.requests[w.session_id()]
    assert (request.amount_cents, request.monthly, request.metadata["payment_type"]) == (5000, True, "monthly")


async def test_the_checkout_returns_to_success_with_the_session_placeholder_or_back_to_the_prefilled_page(
    w: World,
) -> None:
    await w.sign_up("10", payment_type="one_time")
    request = w.gateway.requests[w.session_id()]
    assert request.success_url == f"{PUBLIC_URL}/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert "{CHECKOUT_SESSION_ID}" in request.success_url
    assert request.cancel_url == f"{PUBLIC_URL}/?phone=%2B14155550123"


async def test_a_paid_sign_up_records_a_pending_payment_for_the_session(w: World) -> None:
    await w.sign_up("10", payment_type="monthly", token=w.token())
    payment = w.store.payment()
    assert (payment.status, payment.checkout_session_id, payment.amount_cents, payment.payment_type) == (
        PaymentStatus.PENDING, w.session_id(), 1000, PaymentType.MONTHLY)
    assert payment.customer_id in w.gateway.customers
    assert payment.phone_proven
    assert w.store.actions() == ["checkout.opened"]


async def test_a_paid_sign_up_changes_no_member_until_the_payment_completes(w: World) -> None:
    await w.sign_up("10", payment_type="one_time")
    assert w.store.state.subscribers == {}
    assert w.store.state.journeys == {}


async def test_a_double_click_opens_one_session_and_records_one_payment(w: World) -> None:
    first = await w.sign_up("10", payment_type="one_time")
    second = await w.sign_up("10", payment_type="one_time")
    assert first.url == second.url
    assert len(w.gateway.requests) == 1
    assert len(w.store.state.payments) == 1


async def test_a_double_clicked_free_sign_up_starts_one_journey(w: World) -> None:
    await w.sign_up("free")
    await w.sign_up("free")
    assert len(w.store.state.journeys) == 1


async def test_a_free_sign_up_from_a_paying_subscriber_keeps_the_paid_membership(w: World) -> None:
    await w.buy("10", "monthly")
    await w.sign_up("free", token=w.token())
    member = w.store.subscriber(PHONE)
    assert (member.membership, member.paid_tier) == (Membership.PAID, "10")


@pytest.mark.parametrize(("field", "form"), [
    ("email", {"email": "not-an-email"}),
    ("email", {"email": ""}),
    ("email", {"email": None}),
    ("phone", {"phone": "12"}),
    ("phone", {"phone": ""}),
    ("phone", {"phone": 4155550123}),
    ("tier", {"tier": "gold"}),
    ("amount", {"tier": "custom", "amount": "12.5"}),
    ("payment_type", {"tier": "10", "payment_type": "yearly"}),
])
async def test_an_invalid_form_names_the_field_and_records_nothing(w: World, field: str, form: dict[str, object]
                                                                   ) -> None:
    fields: dict[str, object] = {"tier": "10", "payment_type": "one_time", **form}
    with pytest.raises(InvalidCheckout) as raised:
        await w.sign_up(**fields)
    assert raised.value.field == field
    assert (w.store.commits, w.gateway.customers, w.gateway.requests) == (0, {}, {})


async def test_an_unavailable_provider_propagates_and_records_nothing(w: World) -> None:
    w.gateway.unavailable = True
    with pytest.raises(PaymentProviderUnavailable):
        await w.sign_up("10", payment_type="one_time")
    assert w.store.commits == 0
    assert w.store.state.payments == {}
