from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from weft.domain.journey import AuditEntry, Journey
from weft.domain.messages import DeliveryStatus, InboundSms, OutboundEmail, OutboundSms, SendResult
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Subscriber

T = TypeVar("T")


@attrs.frozen
class OutboxEntry:
    """An outbox row as the relay and the admin API see it."""

    message: OutboundSms
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    provider_id: str | None = None
    error: str | None = None
    sent_at: datetime | None = None


@attrs.frozen
class Cancellation:
    """A provider subscription to cancel, queued with the change that asked for it and retried until done."""

    subscription_id: str
    phone: PhoneNumber
    requested_at: datetime
    status: str = "pending"  # pending | done | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None


class Transaction(Protocol):
    """Synchronous view of one database transaction; it commits only when the work returns."""

    def record_inbound(self, message: InboundSms, at: datetime) -> bool:
        """Store the message once per provider id; False when it was already stored (a redelivery)."""
        ...

    def get_subscriber(self, phone: PhoneNumber) -> Subscriber | None:
        """The subscriber with this number, or None."""
        ...

    def save_subscriber(self, subscriber: Subscriber) -> None:
        """Insert or update the subscriber and append its new consent changes to the history."""
        ...

    def enqueue(self, message: OutboundSms, at: datetime) -> None:
        """Add a pending message to the outbox, due now."""
        ...

    def due_messages(self, now: datetime, limit: int) -> list[OutboxEntry]:
        """Pending messages whose next attempt is due, oldest first, locked against other instances."""
        ...

    def update_delivery(self, message_id: str, entry: OutboxEntry) -> None:
        """Overwrite the delivery fields (status, attempts, next attempt, provider id, error, sent at)."""
        ...

    def record_event(self, event_id: str, at: datetime) -> bool:
        """Remember a provider event id; False when it was processed before."""
        ...

    def get_payment(self, payment_id: str) -> Payment | None:
        ...

    def payment_by_session(self, session_id: str) -> Payment | None:
        ...

    def payment_by_subscription(self, subscription_id: str) -> Payment | None:
        ...

    def save_payment(self, payment: Payment) -> None:
        """Insert or update the payment."""
        ...

    def live_subscriptions(self, phone: PhoneNumber) -> list[str]:
        """Provider subscription ids of this number's payments that may still bill (active, past due, pending)."""
        ...

    def get_journey(self, journey_id: str) -> Journey | None:
        ...

    def save_journey(self, journey: Journey, next_run_at: datetime | None) -> None:
        """Insert or update the journey; it is due to run at next_run_at (None: nothing to run)."""
        ...

    def due_journeys(self, now: datetime, limit: int) -> list[Journey]:
        """Journeys due to run, oldest first, locked against other instances."""
        ...

    def audit(self, entry: AuditEntry) -> None:
        """Append to the audit log."""
        ...

    def request_cancellation(self, cancellation: Cancellation) -> None:
        """Queue a subscription cancellation, due now (a repeat request for the same subscription is ignored)."""
        ...

    def due_cancellations(self, now: datetime, limit: int) -> list[Cancellation]:
        ...

    def save_cancellation(self, cancellation: Cancellation) -> None:
        ...


class Store(Protocol):
    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run work in one transaction and commit durably before returning its result."""
        ...

    async def subscribers(self) -> list[Subscriber]:
        """Every subscriber, newest first."""
        ...

    async def subscriber_detail(self, phone: PhoneNumber) -> dict[str, Any] | None:
        """State, consent history, and messages in and out for one number; None when unknown."""
        ...

    async def outbox(self, limit: int = 200) -> list[OutboxEntry]:
        """The newest outbox entries."""
        ...

    async def payments(self, limit: int = 200) -> list[Payment]:
        """The newest payments."""
        ...

    async def payment_for_session(self, session_id: str) -> Payment | None:
        """The payment opened by this checkout session."""
        ...

    async def journeys(self, failed_only: bool = False, limit: int = 200) -> list[Journey]:
        """The newest journeys, or only those with a failed step."""
        ...

    async def audit_log(self, action: str | None, since: datetime | None, limit: int = 500) -> list[AuditEntry]:
        """Audit entries, newest first, filtered by action and time."""
        ...


class SmsSender(Protocol):
    async def send(self, message: OutboundSms) -> SendResult:
        """Hand one message to the provider; never raises for provider or network faults, reports them."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def __call__(self) -> str:
        """A new unique id."""
        ...



class EmailSender(Protocol):
    async def send(self, email: OutboundEmail) -> SendResult:
        """Hand one email to the provider; never raises for provider or network faults, reports them."""
        ...


@attrs.frozen
class CheckoutRequest:
    """A paid checkout to open for a customer, provider-neutral; amounts in cents."""

    customer_id: str
    amount_cents: int
    monthly: bool
    product_name: str
    success_url: str
    cancel_url: str
    metadata: dict[str, str]
    idempotency_key: str


@attrs.frozen
class CheckoutSession:
    id: str
    url: str


@attrs.frozen
class SessionState:
    """A checkout session as the provider reports it now (re-read, never taken from an event)."""

    id: str
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    mode: str  # payment | subscription
    customer_id: str | None
    subscription_id: str | None
    phone: str | None  # customer_details.phone
    email: str | None  # customer_details.email
    amount_total: int | None
    metadata: dict[str, str]


@attrs.frozen
class SubscriptionState:
    id: str
    status: str  # active | trialing | past_due | unpaid | canceled | incomplete | incomplete_expired | paused
    customer_id: str | None
    metadata: dict[str, str]


@attrs.frozen
class CustomerRecord:
    id: str
    email: str | None
    phone: str | None


@attrs.frozen
class PaymentEvent:
    """A verified provider event: its id (the dedupe key), type, and the object it carries (a plain dict)."""

    id: str
    type: str
    object: dict[str, Any]


class PaymentGateway(Protocol):
    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        """The customer with this email (exact, strongly consistent), else this phone, else a new one;
        the phone is added when the found customer lacks it."""
        ...

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a hosted checkout; the same idempotency key yields the same session."""
        ...

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        """The session as the provider sees it now."""
        ...

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        """The subscription as the provider sees it now."""
        ...

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        """The customer as the provider sees it now."""
        ...

    async def cancel_subscription(self, subscription_id: str) -> None:
        """Cancel now; cancelling an already-cancelled subscription is not an error."""
        ...
