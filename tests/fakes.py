from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from weft.application.ports import (
    Cancellation,
    CheckoutRequest,
    CheckoutSession,
    CustomerRecord,
    OutboxEntry,
    SessionState,
    SubscriptionState,
    Transaction,
)
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable
from weft.domain.journey import AuditEntry, Journey
from weft.domain.messages import DeliveryStatus, InboundSms, OutboundEmail, OutboundSms, SendResult
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import ConsentChange, Subscriber

T = TypeVar("T")


class FixedClock:
    def __init__(self, at: datetime = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class SequentialIds:
    def __init__(self, prefix: str = "msg") -> None:
        self._counter = itertools.count(1)
        self._prefix = prefix

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class FakeSmsSender:
    """Records what it sends; `script` holds results to return, in order, before it starts accepting."""

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []
        self.attempts: list[OutboundSms] = []
        self.script: list[SendResult] = []

    def fail_next(self, *results: SendResult) -> None:
        self.script.extend(results)

    async def send(self, message: OutboundSms) -> SendResult:
        self.attempts.append(message)
        if self.script:
            return self.script.pop(0)
        self.sent.append(message)
        return SendResult(accepted=True, provider_id=f"fake-{len(self.sent)}")


class FakeEmailSender:
    """Records what it sends; `script` holds results to return, in order, before it starts accepting."""

    def __init__(self) -> None:
        self.sent: list[OutboundEmail] = []
        self.script: list[SendResult] = []

    def fail_next(self, *results: SendResult) -> None:
        self.script.extend(results)

    async def send(self, email: OutboundEmail) -> SendResult:
        if self.script:
            return self.script.pop(0)
        self.sent.append(email)
        return SendResult(accepted=True, provider_id=f"email-{len(self.sent)}")


class FakePaymentGateway:
    """A provider that keeps customers, sessions and subscriptions in memory; `unavailable` makes it fail."""

    def __init__(self) -> None:
        self.customers: dict[str, CustomerRecord] = {}
        self.sessions: dict[str, SessionState] = {}
        self.requests: dict[str, CheckoutRequest] = {}
        self.subscriptions: dict[str, SubscriptionState] = {}
        self.cancelled: list[str] = []
        self.unavailable = False
        self._n = itertools.count(1)

    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        self._check()
        found = next((c for c in self.customers.values() if c.email == email or c.phone == phone), None)
        customer = found or CustomerRecord(f"cus_{next(self._n)}", email, phone)
        self.customers[customer.id] = customer
        return customer

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        self._check()
        session_id = next((s for s, r in self.requests.items() if r.idempotency_key == request.idempotency_key),
                          f"cs_{next(self._n)}")
        self.requests[session_id] = request
        self.sessions.setdefault(session_id, SessionState(
            session_id, "open", "unpaid", "subscription" if request.monthly else "payment", request.customer_id,
            None, None, None, request.amount_cents, dict(request.metadata)))
        return CheckoutSession(session_id, f"https://checkout.test/{session_id}")

    def complete(self, session_id: str, phone: str | None = None, paid: bool = True) -> SessionState:
        session = self.sessions[session_id]
        subscription = None
        if session.mode == "subscription" and paid:
            subscription = f"sub_{next(self._n)}"
            self.subscriptions[subscription] = SubscriptionState(subscription, "active", session.customer_id, {})
        customer = self.customers.get(session.customer_id or "")
        session = attrs.evolve(session, status="complete", payment_status="paid" if paid else "unpaid",
                               subscription_id=subscription, phone=phone, email=customer.email if customer else None)
        self.sessions[session_id] = session
        return session

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        self._check()
        if session_id not in self.sessions:
            raise PaymentProviderError(f"no such session {session_id}")
        return self.sessions[session_id]

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        self._check()
        return self.subscriptions[subscription_id]

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        self._check()
        return self.customers[customer_id]

    async def cancel_subscription(self, subscription_id: str) -> None:
        self._check()
        self.cancelled.append(subscription_id)
        if subscription_id in self.subscriptions:
            self.subscriptions[subscription_id] = attrs.evolve(self.subscriptions[subscription_id],
                                                               status="canceled")

    def _check(self) -> None:
        if self.unavailable:
            raise PaymentProviderUnavailable("provider down")


@attrs.define
class _State:
    inbound: dict[str, tuple[InboundSms, datetime]] = attrs.field(factory=dict)
    subscribers: dict[str, Subscriber] = attrs.field(factory=dict)
    history: list[tuple[str, ConsentChange]] = attrs.field(factory=list)
    outbox: dict[str, OutboxEntry] = attrs.field(factory=dict)
    events: set[str] = attrs.field(factory=set)
    payments: dict[str, Payment] = attrs.field(factory=dict)
    journeys: dict[str, tuple[Journey, datetime | None]] = attrs.field(factory=dict)
    audit: list[AuditEntry] = attrs.field(factory=list)
    cancellations: dict[str, Cancellation] = attrs.field(factory=dict)


class InMemoryStore:
    """The Store and Transaction ports in memory; a failing unit of work leaves no trace."""

    def __init__(self) -> None:
        self.state = _State()
        self.commits = 0

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        draft = InMemoryTransaction(copy.deepcopy(self.state))
        result = work(draft)
        self.state = draft.state
        self.commits += 1
        return result

    async def subscribers(self) -> list[Subscriber]:
        return sorted(self.state.subscribers.values(), key=lambda s: s.created_at, reverse=True)

    async def subscriber_detail(self, phone: PhoneNumber) -> dict[str, Any] | None:
        subscriber = self.state.subscribers.get(phone.e164)
        if subscriber is None:
            return None
        return {
            "subscriber": subscriber,
            "consent_history": [attrs.asdict(c) for p, c in self.state.history if p == phone.e164],
            "inbound": [{"text": m.text, "received_at": at} for m, at in self.state.inbound.values()
                        if m.sender == phone],
            "outbound": [e for e in self.state.outbox.values() if e.message.to == phone],
        }

    async def outbox(self, limit: int = 200) -> list[OutboxEntry]:
        return list(self.state.outbox.values())[-limit:]

    async def payments(self, limit: int = 200) -> list[Payment]:
        return list(reversed(self.state.payments.values()))[:limit]

    async def payment_for_session(self, session_id: str) -> Payment | None:
        return next((p for p in self.state.payments.values() if p.checkout_session_id == session_id), None)

    async def journeys(self, failed_only: bool = False, limit: int = 200) -> list[Journey]:
        found = [j for j, _ in self.state.journeys.values() if j.failed_steps or not failed_only]
        return found[:limit]

    async def audit_log(self, action: str | None, since: datetime | None, limit: int = 500) -> list[AuditEntry]:
        found = [e for e in reversed(self.state.audit)
                 if (action is None or e.action == action) and (since is None or e.at >= since)]
        return found[:limit]

    def actions(self) -> list[str]:
        return [e.action for e in self.state.audit]

    def payment(self) -> Payment:
        (payment,) = self.state.payments.values()
        return payment

    def journey(self) -> Journey:
        (entry,) = self.state.journeys.values()
        return entry[0]

    def subscriber(self, phone: str) -> Subscriber:
        return self.state.subscribers[phone]

    def messages(self, status: DeliveryStatus | None = None) -> list[OutboxEntry]:
        return [e for e in self.state.outbox.values() if status is None or e.status is status]


class InMemoryTransaction:
    def __init__(self, state: _State) -> None:
        self.state = state

    def record_inbound(self, message: InboundSms, at: datetime) -> bool:
        if message.provider_id in self.state.inbound:
            return False
        self.state.inbound[message.provider_id] = (message, at)
        return True

    def get_subscriber(self, phone: PhoneNumber) -> Subscriber | None:
        found = self.state.subscribers.get(phone.e164)
        return None if found is None else copy.deepcopy(found)

    def save_subscriber(self, subscriber: Subscriber) -> None:
        self.state.history.extend((subscriber.phone.e164, change) for change in subscriber.changes)
        subscriber.changes.clear()
        self.state.subscribers[subscriber.phone.e164] = copy.deepcopy(subscriber)

    def enqueue(self, message: OutboundSms, at: datetime) -> None:
        self.state.outbox[message.id] = OutboxEntry(
            message=message, status=DeliveryStatus.PENDING, attempts=0, created_at=at, next_attempt_at=at
        )

    def due_messages(self, now: datetime, limit: int) -> list[OutboxEntry]:
        due = [
            e for e in self.state.outbox.values()
            if e.status is DeliveryStatus.PENDING and e.next_attempt_at is not None and e.next_attempt_at <= now
        ]
        return sorted(due, key=lambda e: (e.next_attempt_at or now, e.created_at))[:limit]

    def update_delivery(self, message_id: str, entry: OutboxEntry) -> None:
        self.state.outbox[message_id] = entry

    def record_event(self, event_id: str, at: datetime) -> bool:
        if event_id in self.state.events:
            return False
        self.state.events.add(event_id)
        return True

    def get_payment(self, payment_id: str) -> Payment | None:
        return copy.deepcopy(self.state.payments.get(payment_id))

    def payment_by_session(self, session_id: str) -> Payment | None:
        return self._payment(lambda p: p.checkout_session_id == session_id)

    def payment_by_subscription(self, subscription_id: str) -> Payment | None:
        return self._payment(lambda p: p.subscription_id == subscription_id)

    def live_subscriptions(self, phone: PhoneNumber) -> list[str]:
        live = {"active", "past_due", "processing"}
        return [p.subscription_id for p in self.state.payments.values()
                if p.phone == phone and p.subscription_id and p.status.value in live]

    def save_payment(self, payment: Payment) -> None:
        self.state.payments[payment.id] = copy.deepcopy(payment)

    def get_journey(self, journey_id: str) -> Journey | None:
        found = self.state.journeys.get(journey_id)
        return None if found is None else copy.deepcopy(found[0])

    def save_journey(self, journey: Journey, next_run_at: datetime | None) -> None:
        self.state.journeys[journey.id] = (copy.deepcopy(journey), next_run_at)

    def due_journeys(self, now: datetime, limit: int) -> list[Journey]:
        due = [copy.deepcopy(j) for j, at in self.state.journeys.values() if at is not None and at <= now]
        return due[:limit]

    def audit(self, entry: AuditEntry) -> None:
        self.state.audit.append(entry)

    def request_cancellation(self, cancellation: Cancellation) -> None:
        self.state.cancellations.setdefault(cancellation.subscription_id, cancellation)

    def due_cancellations(self, now: datetime, limit: int) -> list[Cancellation]:
        return [c for c in self.state.cancellations.values()
                if c.status == "pending" and c.next_attempt_at is not None and c.next_attempt_at <= now][:limit]

    def save_cancellation(self, cancellation: Cancellation) -> None:
        self.state.cancellations[cancellation.subscription_id] = cancellation

    def _payment(self, matches: Callable[[Payment], bool]) -> Payment | None:
        return copy.deepcopy(next((p for p in self.state.payments.values() if matches(p)), None))
