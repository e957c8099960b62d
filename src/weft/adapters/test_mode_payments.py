from __future__ import annotations

import itertools
import uuid

import attrs

from weft.application.ports import CheckoutRequest, CheckoutSession, CustomerRecord, SessionState, SubscriptionState
from weft.domain.errors import PaymentProviderError


@attrs.define
class TestSession:
    __test__ = False

    request: CheckoutRequest
    state: SessionState


class TestModePaymentGateway:
    """The embedded default with no Stripe key: an in-process checkout at /test-checkout/{id}; nothing is charged.

    Sessions live in memory: a restart forgets open test checkouts (completed ones are already in the database).
    """

    __test__ = False

    def __init__(self) -> None:
        self._customers: dict[str, CustomerRecord] = {}
        self._sessions: dict[str, TestSession] = {}
        self._by_key: dict[str, str] = {}
        self._subscriptions: dict[str, SubscriptionState] = {}
        self._counter = itertools.count(1)

    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        for customer in self._customers.values():
            if customer.email == email or customer.phone == phone:
                return customer
        customer = CustomerRecord(id=f"cus_test_{next(self._counter)}", email=email, phone=phone)
        self._customers[customer.id] = customer
        return customer

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = self._by_key.get(request.idempotency_key) or f"cs_test_local_{uuid.uuid4().hex[:16]}"
        if session_id not in self._sessions:
            self._by_key[request.idempotency_key] = session_id
            self._sessions[session_id] = TestSession(request, _open_state(session_id, request))
        return CheckoutSession(session_id, f"/test-checkout/{session_id}")

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        return self.session(session_id).state

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        if subscription_id not in self._subscriptions:
            raise PaymentProviderError(f"no such subscription: {subscription_id}")
        return self._subscriptions[subscription_id]

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        if customer_id not in self._customers:
            raise PaymentProviderError(f"no such customer: {customer_id}")
        return self._customers[customer_id]

    async def cancel_subscription(self, subscription_id: str) -> None:
        if subscription_id in self._subscriptions:
            self._subscriptions[subscription_id] = attrs.evolve(self._subscriptions[subscription_id], status="canceled")

    def session(self, session_id: str) -> TestSession:
        """The test session, for the test-mode checkout page."""
        if session_id not in self._sessions:
            raise PaymentProviderError(f"no such checkout session: {session_id}")
        return self._sessions[session_id]

    def pay(self, session_id: str) -> SessionState:
        """Complete the test checkout as a successful payment (creating the subscription for monthly)."""
        session = self.session(session_id)
        if session.state.status == "complete":
            return session.state
        subscription_id = None
        if session.request.monthly:
            subscription_id = f"sub_test_{next(self._counter)}"
            self._subscriptions[subscription_id] = SubscriptionState(
                subscription_id, "active", session.state.customer_id, dict(session.request.metadata)
            )
        customer = self._customers.get(session.state.customer_id or "")
        session.state = attrs.evolve(
            session.state, status="complete", payment_status="paid", subscription_id=subscription_id,
            phone=customer.phone if customer else None, email=customer.email if customer else None,
        )
        return session.state


def _open_state(session_id: str, request: CheckoutRequest) -> SessionState:
    return SessionState(
        id=session_id, status="open", payment_status="unpaid",
        mode="subscription" if request.monthly else "payment", customer_id=request.customer_id,
        subscription_id=None, phone=None, email=None, amount_total=request.amount_cents,
        metadata=dict(request.metadata),
    )
