from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import stripe

from tests.integration.loopback_stripe import LoopbackStripe, StripeCall
from tests.integration.stripe_events import API_VERSION
from weft.adapters.stripe_payments import StripePaymentGateway
from weft.application.ports import CheckoutRequest
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable

API_KEY = "sk_test_loopback_0123456789"
EMAIL = "buyer@example.com"
PHONE = "+14155550123"


@pytest.fixture
def stripe_server() -> Iterator[LoopbackStripe]:
    server = LoopbackStripe(api_key=API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
async def gateway(stripe_server: LoopbackStripe) -> AsyncIterator[StripePaymentGateway]:
    gateway = StripePaymentGateway(API_KEY, api_base=stripe_server.url)
    yield gateway
    await gateway.aclose()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # stripe-python sleeps at least HTTPClient.INITIAL_DELAY (0.5 s) between retries; tests need not wait.
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)


def checkout(customer_id: str, monthly: bool = True, key: str = "checkout-1", amount: int = 1000) -> CheckoutRequest:
    return CheckoutRequest(
        customer_id=customer_id, amount_cents=amount, monthly=monthly, product_name="Membership $10",
        success_url="https://sms.example.com/join/thanks?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="https://sms.example.com/join/cancel", metadata={"tier": "10", "phone": PHONE},
        idempotency_key=key,
    )


def only(calls: list[StripeCall]) -> StripeCall:
    assert len(calls) == 1, calls
    return calls[0]


async def test_customer_with_the_exact_email_is_found_by_list(stripe_server: LoopbackStripe,
                                                              gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer(EMAIL, PHONE)

    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    assert (record.id, record.email, record.phone) == (seeded["id"], EMAIL, PHONE)
    assert only(stripe_server.calls_to("GET", "/v1/customers")).params == {"email": EMAIL, "limit": "1"}
    assert stripe_server.calls_to("GET", "/v1/customers/search") == [] and len(stripe_server.customers) == 1


async def test_customer_stored_with_other_case_is_found_by_search(stripe_server: LoopbackStripe,
                                                                  gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer("Buyer@Example.com", PHONE)

    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    assert record.id == seeded["id"] and len(stripe_server.customers) == 1
    assert only(stripe_server.calls_to("GET", "/v1/customers/search")).params["query"] == f"email:'{EMAIL}'"


async def test_search_query_escapes_quotes_in_the_email(stripe_server: LoopbackStripe,
                                                        gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer("O'Brien@example.com", PHONE)

    record = await gateway.find_or_create_customer("o'brien@example.com", PHONE)

    assert record.id == seeded["id"]
    assert stripe_server.calls_to("GET", "/v1/customers/search")[0].params["query"] == "email:'o\\'brien@example.com'"


async def test_customer_is_found_by_phone_when_no_email_matches(stripe_server: LoopbackStripe,
                                                                gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer("old-address@example.com", PHONE)

    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    assert record.id == seeded["id"] and len(stripe_server.customers) == 1
    assert stripe_server.calls_to("GET", "/v1/customers/search")[-1].params["query"] == f"phone:'{PHONE}'"


async def test_customer_is_created_with_email_phone_and_a_deterministic_key(stripe_server: LoopbackStripe,
                                                                            gateway: StripePaymentGateway) -> None:
    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    created = only(stripe_server.calls_to("POST", "/v1/customers"))
    assert created.params == {"email": EMAIL, "phone": PHONE}
    assert created.idempotency_key == "customer-" + hashlib.sha256(f"{EMAIL}|{PHONE}".encode()).hexdigest()
    assert stripe_server.customers[record.id]["email"] == EMAIL and record.phone == PHONE


async def test_found_customer_without_a_phone_gets_this_phone(stripe_server: LoopbackStripe,
                                                              gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer(EMAIL, None)

    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    assert record.phone == PHONE and stripe_server.customers[seeded["id"]]["phone"] == PHONE


async def test_found_customer_with_another_phone_keeps_it(stripe_server: LoopbackStripe,
                                                          gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer(EMAIL, "+14155550999")

    record = await gateway.find_or_create_customer(EMAIL, PHONE)

    assert record.phone == "+14155550999" and stripe_server.calls_to("POST", f"/v1/customers/{seeded['id']}") == []


async def test_monthly_checkout_sends_a_subscription_session_on_the_wire(stripe_server: LoopbackStripe,
                                                                         gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)

    await gateway.create_checkout_session(checkout(customer["id"]))

    call = only(stripe_server.calls_to("POST", "/v1/checkout/sessions"))
    assert call.idempotency_key == "checkout-1"
    assert call.params == {
        "mode": "subscription", "customer": customer["id"],
        "line_items": [{"quantity": "1", "price_data": {
            "currency": "usd", "unit_amount": "1000", "product_data": {"name": "Membership $10"},
            "recurring": {"interval": "month"}}}],
        "phone_number_collection": {"enabled": "false"},
        "shipping_address_collection": {"allowed_countries": ["US", "CA"]},
        "customer_update": {"shipping": "auto"}, "allow_promotion_codes": "true",
        "success_url": "https://sms.example.com/join/thanks?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://sms.example.com/join/cancel",
        "metadata": {"tier": "10", "phone": PHONE},
        "subscription_data": {"metadata": {"tier": "10", "phone": PHONE}},
    }


async def test_one_time_checkout_is_a_payment_session_without_recurring(stripe_server: LoopbackStripe,
                                                                        gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)

    await gateway.create_checkout_session(checkout(customer["id"], monthly=False, amount=2500))

    params = only(stripe_server.calls_to("POST", "/v1/checkout/sessions")).params
    assert params["mode"] == "payment" and "recurring" not in params["line_items"][0]["price_data"]
    assert params["payment_intent_data"] == {"metadata": {"tier": "10", "phone": PHONE}}
    assert "subscription_data" not in params


async def test_checkout_returns_the_hosted_page_url(stripe_server: LoopbackStripe,
                                                    gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)

    session = await gateway.create_checkout_session(checkout(customer["id"]))

    assert session.id.startswith("cs_test_") and session.url == f"https://checkout.stripe.test/c/pay/{session.id}"


async def test_same_idempotency_key_twice_opens_one_session(stripe_server: LoopbackStripe,
                                                            gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)

    first = await gateway.create_checkout_session(checkout(customer["id"]))
    second = await gateway.create_checkout_session(checkout(customer["id"]))

    assert first == second and list(stripe_server.sessions) == [first.id]


async def test_reused_idempotency_key_with_another_amount_is_refused(stripe_server: LoopbackStripe,
                                                                     gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    await gateway.create_checkout_session(checkout(customer["id"]))

    with pytest.raises(PaymentProviderError, match="IdempotencyError"):
        await gateway.create_checkout_session(checkout(customer["id"], amount=2000))


async def test_checkout_for_an_unknown_customer_is_a_provider_error(gateway: StripePaymentGateway) -> None:
    with pytest.raises(PaymentProviderError, match="No such customer"):
        await gateway.create_checkout_session(checkout("cus_missing"))


async def test_open_session_reads_back_unpaid_with_its_metadata(stripe_server: LoopbackStripe,
                                                                gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    opened = await gateway.create_checkout_session(checkout(customer["id"]))

    state = await gateway.retrieve_checkout_session(opened.id)

    assert (state.status, state.payment_status, state.mode) == ("open", "unpaid", "subscription")
    assert (state.customer_id, state.subscription_id, state.phone) == (customer["id"], None, None)
    assert state.amount_total == 1000
    assert state.metadata == {"tier": "10", "phone": PHONE}


async def test_completed_monthly_session_reads_back_with_buyer_and_subscription(stripe_server: LoopbackStripe,
                                                                                gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    opened = await gateway.create_checkout_session(checkout(customer["id"]))
    completed = stripe_server.complete_session(opened.id, phone="+14155550777", email=EMAIL)

    state = await gateway.retrieve_checkout_session(opened.id)

    assert (state.status, state.payment_status) == ("complete", "paid")
    assert (state.phone, state.email) == ("+14155550777", EMAIL)
    assert state.subscription_id == completed["subscription"] and state.subscription_id in stripe_server.subscriptions


async def test_subscription_reads_back_with_status_customer_and_metadata(stripe_server: LoopbackStripe,
                                                                         gateway: StripePaymentGateway) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    opened = await gateway.create_checkout_session(checkout(customer["id"]))
    subscription_id = stripe_server.complete_session(opened.id, phone=PHONE)["subscription"]
    stripe_server.set_subscription_status(subscription_id, "past_due")

    state = await gateway.retrieve_subscription(subscription_id)

    assert (state.id, state.status, state.customer_id) == (subscription_id, "past_due", customer["id"])
    assert state.metadata == {"tier": "10", "phone": PHONE}


async def test_customer_reads_back_by_id(stripe_server: LoopbackStripe, gateway: StripePaymentGateway) -> None:
    seeded = stripe_server.add_customer(EMAIL, PHONE)

    record = await gateway.retrieve_customer(seeded["id"])

    assert (record.id, record.email, record.phone) == (seeded["id"], EMAIL, PHONE)


async def test_cancelling_a_subscription_ends_it_now(stripe_server: LoopbackStripe,
                                                     gateway: StripePaymentGateway) -> None:
    subscription_id = await _active_subscription(stripe_server, gateway)

    await gateway.cancel_subscription(subscription_id)

    assert stripe_server.subscriptions[subscription_id]["status"] == "canceled"
    assert only(stripe_server.calls_to("DELETE", f"/v1/subscriptions/{subscription_id}")).params == {}


async def test_cancelling_twice_is_not_an_error(stripe_server: LoopbackStripe, gateway: StripePaymentGateway) -> None:
    subscription_id = await _active_subscription(stripe_server, gateway)
    await gateway.cancel_subscription(subscription_id)

    await gateway.cancel_subscription(subscription_id)

    assert stripe_server.subscriptions[subscription_id]["status"] == "canceled"


async def test_cancelling_an_unknown_subscription_is_a_provider_error(gateway: StripePaymentGateway) -> None:
    with pytest.raises(PaymentProviderError, match="No such subscription"):
        await gateway.cancel_subscription("sub_missing")


async def _active_subscription(stripe_server: LoopbackStripe, gateway: StripePaymentGateway) -> str:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    opened = await gateway.create_checkout_session(checkout(customer["id"]))
    return str(stripe_server.complete_session(opened.id, phone=PHONE)["subscription"])


async def test_server_error_then_success_is_retried_with_the_same_key(
    stripe_server: LoopbackStripe, gateway: StripePaymentGateway, fast_retries: None
) -> None:
    customer = stripe_server.add_customer(EMAIL, PHONE)
    stripe_server.fail_next(500)

    session = await gateway.create_checkout_session(checkout(customer["id"]))

    attempts = stripe_server.calls_to("POST", "/v1/checkout/sessions")
    assert [a.idempotency_key for a in attempts] == ["checkout-1", "checkout-1"]
    assert list(stripe_server.sessions) == [session.id]


async def test_persistent_server_errors_are_unavailable_after_the_retries(
    stripe_server: LoopbackStripe, gateway: StripePaymentGateway, fast_retries: None
) -> None:
    for _ in range(3):
        stripe_server.fail_next(500)

    with pytest.raises(PaymentProviderUnavailable, match="HTTP 500"):
        await gateway.retrieve_customer("cus_any")

    assert len(stripe_server.calls_to("GET", "/v1/customers/cus_any")) == 3


async def test_rate_limit_is_unavailable(stripe_server: LoopbackStripe, gateway: StripePaymentGateway) -> None:
    stripe_server.fail_next(429, {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Slow"}})

    with pytest.raises(PaymentProviderUnavailable, match="RateLimitError"):
        await gateway.retrieve_customer("cus_any")


async def test_bad_request_is_a_provider_error(stripe_server: LoopbackStripe, gateway: StripePaymentGateway) -> None:
    stripe_server.fail_next(400, {"error": {"type": "invalid_request_error", "message": "Invalid integer: abc"}})

    with pytest.raises(PaymentProviderError, match="Invalid integer"):
        await gateway.retrieve_customer("cus_any")


async def test_a_wrong_api_key_is_retryable_and_does_not_show_the_key(stripe_server: LoopbackStripe) -> None:
    gateway = StripePaymentGateway("sk_test_wrong_key_123", api_base=stripe_server.url)
    try:
        with pytest.raises(PaymentProviderUnavailable, match="AuthenticationError") as raised:
            await gateway.retrieve_customer("cus_any")
    finally:
        await gateway.aclose()

    assert "sk_test_wrong_key_123" not in str(raised.value)


async def test_connection_refused_is_unavailable(fast_retries: None) -> None:
    gateway = StripePaymentGateway(API_KEY, api_base=f"http://127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(PaymentProviderUnavailable, match="APIConnectionError"):
            await gateway.find_or_create_customer(EMAIL, PHONE)
    finally:
        await gateway.aclose()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_every_request_carries_the_pinned_api_version_and_the_key(stripe_server: LoopbackStripe,
                                                                        gateway: StripePaymentGateway) -> None:
    await gateway.find_or_create_customer(EMAIL, PHONE)

    assert {(c.stripe_version, c.authorization) for c in stripe_server.calls} == {(API_VERSION, f"Bearer {API_KEY}")}


async def test_a_portal_session_is_opened_for_the_customer_with_the_way_back(
    stripe_server: LoopbackStripe, gateway: StripePaymentGateway
) -> None:
    seeded = stripe_server.add_customer(EMAIL, PHONE)

    url = await gateway.create_portal_session(seeded["id"], "https://sms.example.com/?phone=%2B14155550123")

    assert url.startswith("https://billing.stripe.com/p/session/")
    call = only(stripe_server.calls_to("POST", "/v1/billing_portal/sessions"))
    assert call.params == {"customer": seeded["id"], "return_url": "https://sms.example.com/?phone=%2B14155550123"}


async def test_a_portal_session_for_an_unknown_customer_is_a_provider_error(gateway: StripePaymentGateway) -> None:
    with pytest.raises(PaymentProviderError, match="No such customer"):
        await gateway.create_portal_session("cus_missing", "https://sms.example.com/")
