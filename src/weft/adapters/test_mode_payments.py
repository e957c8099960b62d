"""The embedded default with no Stripe key: a checkout of our own, kept in the database; nothing is charged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.application.ports import CheckoutRequest, CheckoutSession, CustomerRecord, SessionState, SubscriptionState
from weft.domain.errors import PaymentProviderError

T = TypeVar("T")
_o = t.test_mode_objects.c


@attrs.frozen
class TestSession:
    """A test checkout: what was asked for and where it stands."""

    __test__ = False

    request: CheckoutRequest
    state: SessionState


@attrs.frozen
class TestPortal:
    """A stand-in for a session of Stripe's customer portal."""

    __test__ = False

    id: str
    customer_id: str
    return_url: str


class TestModePaymentGateway:
    """PaymentGateway with a checkout page at /test-checkout/{id} and a portal stand-in at /test-portal/{id}.

    Its customers, sessions and subscriptions live in the database (test_mode_objects), so an open test checkout
    survives a restart and any process (the web process, a `weft worker`) can read it.
    """

    __test__ = False

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        def find_or_create(c: sa.Connection) -> CustomerRecord:
            for data in _all(c, "customer"):
                if data["email"] == email or data["phone"] == phone:
                    return CustomerRecord(**data)
            customer = CustomerRecord(id=f"cus_test_{uuid.uuid4().hex[:16]}", email=email, phone=phone)
            _put(c, "customer", customer.id, attrs.asdict(customer), lookup=email)
            return customer

        return await self._run(find_or_create)

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        def open_once(c: sa.Connection) -> str:
            found = c.execute(sa.select(_o.id).where(_o.kind == "session", _o.lookup == request.idempotency_key))
            session_id = found.scalar()
            if session_id is None:
                session_id = f"cs_test_local_{uuid.uuid4().hex[:16]}"
                stored = {"request": attrs.asdict(request), "state": attrs.asdict(_open_state(session_id, request))}
                _put(c, "session", session_id, stored, lookup=request.idempotency_key)
            return str(session_id)

        session_id = await self._run(open_once)
        return CheckoutSession(session_id, f"/test-checkout/{session_id}")

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        return (await self.session(session_id)).state

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        data = await self._run(lambda c: _get(c, "subscription", subscription_id))
        return SubscriptionState(**data)

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        return CustomerRecord(**await self._run(lambda c: _get(c, "customer", customer_id)))

    async def cancel_subscription(self, subscription_id: str) -> None:
        def cancel(c: sa.Connection) -> None:
            data = _get_or_none(c, "subscription", subscription_id)
            if data is not None:
                _update(c, subscription_id, {**data, "status": "canceled"})

        await self._run(cancel)

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        portal = TestPortal(f"bps_test_{uuid.uuid4().hex[:16]}", customer_id, return_url)
        await self._run(lambda c: _put(c, "portal", portal.id, attrs.asdict(portal), lookup=customer_id))
        return f"/test-portal/{portal.id}"

    async def portal(self, portal_id: str) -> TestPortal:
        """The portal session, for the stand-in page."""
        return TestPortal(**await self._run(lambda c: _get(c, "portal", portal_id)))

    async def live_subscriptions(self, customer_id: str) -> list[SubscriptionState]:
        """The customer's subscriptions that still bill, for the portal stand-in."""
        found = await self._run(lambda c: _all(c, "subscription"))
        return [SubscriptionState(**data) for data in found
                if data["customer_id"] == customer_id and data["status"] == "active"]

    async def session(self, session_id: str) -> TestSession:
        """The test session, for the test-mode checkout page."""
        data = await self._run(lambda c: _get(c, "session", session_id))
        return TestSession(CheckoutRequest(**data["request"]), SessionState(**data["state"]))

    async def pay(self, session_id: str) -> SessionState:
        """Complete the test checkout as a successful payment (creating the subscription for monthly)."""
        return await self._run(lambda c: _pay(c, session_id))

    async def _run(self, work: Callable[[sa.Connection], T]) -> T:
        return await asyncio.to_thread(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[sa.Connection], T]) -> T:
        # A writer's transaction (BEGIN IMMEDIATE on SQLite): a read that then writes never deadlocks another.
        with self._engine.connect() as connection:
            connection.execution_options(weft_writer=True)
            with connection.begin():
                return work(connection)


def _pay(c: sa.Connection, session_id: str) -> SessionState:
    data = _get(c, "session", session_id)
    request, state = CheckoutRequest(**data["request"]), SessionState(**data["state"])
    if state.status == "complete":
        return state
    subscription_id = None
    if request.monthly:
        subscription_id = f"sub_test_{uuid.uuid4().hex[:16]}"
        subscription = SubscriptionState(subscription_id, "active", state.customer_id, dict(request.metadata))
        _put(c, "subscription", subscription_id, attrs.asdict(subscription))
    customer = _get_or_none(c, "customer", state.customer_id or "") or {}
    state = attrs.evolve(state, status="complete", payment_status="paid", subscription_id=subscription_id,
                         phone=customer.get("phone"), email=customer.get("email"))
    _update(c, session_id, {"request": data["request"], "state": attrs.asdict(state)})
    return state


def _open_state(session_id: str, request: CheckoutRequest) -> SessionState:
    return SessionState(
        id=session_id, status="open", payment_status="unpaid",
        mode="subscription" if request.monthly else "payment", customer_id=request.customer_id,
        subscription_id=None, phone=None, email=None, amount_total=request.amount_cents,
        metadata=dict(request.metadata),
    )


def _put(c: sa.Connection, kind: str, object_id: str, data: dict[str, Any], lookup: str | None = None) -> None:
    c.execute(t.test_mode_objects.insert().values(id=object_id, kind=kind, lookup=lookup, data=data,
                                                  created_at=datetime.now(UTC)))


def _update(c: sa.Connection, object_id: str, data: dict[str, Any]) -> None:
    c.execute(t.test_mode_objects.update().where(_o.id == object_id).values(data=data))


def _get_or_none(c: sa.Connection, kind: str, object_id: str) -> dict[str, Any] | None:
    found = c.execute(sa.select(_o.data).where(_o.kind == kind, _o.id == object_id)).scalar()
    return dict(found) if found is not None else None


def _get(c: sa.Connection, kind: str, object_id: str) -> dict[str, Any]:
    found = _get_or_none(c, kind, object_id)
    if found is None:
        raise PaymentProviderError(f"no such test-mode {kind}: {object_id}")
    return found


def _all(c: sa.Connection, kind: str) -> list[dict[str, Any]]:
    return [dict(row[0]) for row in c.execute(sa.select(_o.data).where(_o.kind == kind).order_by(_o.created_at))]
