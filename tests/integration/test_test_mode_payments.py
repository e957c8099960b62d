"""The test-mode checkout keeps what a payment provider would keep in the database: any process, and the same
process after a restart, sees the same customers, sessions and subscriptions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.application.ports import CheckoutRequest
from weft.domain.errors import PaymentProviderError

PHONE = "+14155550123"


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def request(customer_id: str, key: str = "checkout-1", monthly: bool = True) -> CheckoutRequest:
    return CheckoutRequest(customer_id=customer_id, amount_cents=1000, monthly=monthly, product_name="Membership",
                           success_url="/success?session_id={CHECKOUT_SESSION_ID}", cancel_url="/",
                           metadata={"phone": PHONE, "tier": "10"}, idempotency_key=key)


async def test_a_session_opened_by_one_gateway_is_paid_through_another_on_the_same_database(
    engine: sa.Engine,
) -> None:
    opener, payer = TestModePaymentGateway(engine), TestModePaymentGateway(engine)
    customer = await opener.find_or_create_customer("ana@example.org", PHONE)
    session = await opener.create_checkout_session(request(customer.id))

    state = await payer.pay(session.id)

    assert (state.status, state.payment_status, state.phone, state.email) == (
        "complete", "paid", PHONE, "ana@example.org")
    assert state.subscription_id is not None
    assert (await opener.retrieve_subscription(state.subscription_id)).status == "active"
    assert await opener.retrieve_checkout_session(session.id) == state


async def test_the_same_idempotency_key_opens_the_same_session_and_the_same_customer_is_found(
    engine: sa.Engine,
) -> None:
    gateway = TestModePaymentGateway(engine)
    customer = await gateway.find_or_create_customer("ana@example.org", PHONE)

    first = await gateway.create_checkout_session(request(customer.id))
    second = await gateway.create_checkout_session(request(customer.id))

    assert first == second and first.url == f"/test-checkout/{first.id}"
    assert (await gateway.find_or_create_customer("other@example.org", PHONE)).id == customer.id


async def test_cancelling_a_test_subscription_ends_it_and_twice_is_not_an_error(engine: sa.Engine) -> None:
    gateway = TestModePaymentGateway(engine)
    customer = await gateway.find_or_create_customer("ana@example.org", PHONE)
    state = await gateway.pay((await gateway.create_checkout_session(request(customer.id))).id)
    assert state.subscription_id is not None

    await gateway.cancel_subscription(state.subscription_id)
    await gateway.cancel_subscription(state.subscription_id)

    assert (await gateway.retrieve_subscription(state.subscription_id)).status == "canceled"


async def test_unknown_test_objects_are_provider_errors(engine: sa.Engine) -> None:
    gateway = TestModePaymentGateway(engine)
    with pytest.raises(PaymentProviderError):
        await gateway.session("cs_test_local_missing")
    with pytest.raises(PaymentProviderError):
        await gateway.portal("bps_test_missing")


async def test_a_portal_stand_in_session_names_the_customer_and_the_way_back(engine: sa.Engine) -> None:
    gateway = TestModePaymentGateway(engine)

    url = await gateway.create_portal_session("cus_test_1", "http://127.0.0.1:8000/?phone=%2B14155550123")

    portal = await gateway.portal(url.removeprefix("/test-portal/"))
    assert (portal.customer_id, portal.return_url) == ("cus_test_1", "http://127.0.0.1:8000/?phone=%2B14155550123")
