from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from weft.domain.messages import InboundSms, LookupResult, OutboundEmail, OutboundSms, ProviderSentSms, SendResult
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.subscriber import Consent, Subscriber
from weft.domain.tiers import PaymentType


class SmsSender(Protocol):
    async def send(self, message: OutboundSms) -> SendResult:
        """Hand one message to the provider; never raises for provider or network faults, reports them."""
        ...

    async def lookup(self, message: OutboundSms) -> LookupResult:
        """Whether the provider already has this message (by our id), for a send a crash left in doubt; UNKNOWN
        when the provider cannot be asked."""
        ...


@attrs.frozen
class HistoryPage:
    """One page of the messages a provider holds for our channel, in both directions."""

    inbound: list[InboundSms]
    sent: list[ProviderSentSms]
    fetched: int
    """Messages on the page, including ones neither list holds (malformed, or not texts)."""
    newest: datetime | None
    next_page: str | None


class MessageHistory(Protocol):
    async def page(self, since: datetime | None, page_token: str | None) -> HistoryPage:
        """The page after `page_token` of the messages created at or after `since` (all when None); raises
        ProviderUnavailable when the provider cannot be read now."""
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

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """The address of a short-lived session of the provider's customer portal, where the customer changes or
        cancels their plan and comes back to `return_url`."""
        ...


@attrs.frozen
class BaseNumberRow:
    """One row of the organisers' numbers table, as written there (nothing parsed or checked yet)."""

    row_id: str
    phone: str
    message: str
    consent: Consent | None
    """None when the row's consent is empty or not one the base's labels name."""
    created: datetime | None


@attrs.frozen
class BasePaymentRow:
    """One row of the organisers' payments table, as written there (nothing parsed or checked yet)."""

    row_id: str
    email: str
    phone: str
    tier: str
    amount: float | None
    payment_type: PaymentType | None
    """None for a free sign-up (an empty payment type) or a label the base does not name (see `type_text`)."""
    type_text: str
    customer_id: str
    subscription_id: str
    session_id: str
    status: PaymentStatus | None
    """None when the row's status is empty or not one the base's labels name (see `status_text`)."""
    status_text: str
    created: datetime | None


class OrganiserBase(Protocol):
    """The organisers' own tables (Airtable): a copy of every number and payment, kept in step with the store."""

    async def upsert_numbers(self, subscribers: Sequence[Subscriber]) -> None:
        """Create or update one row per number (at most 10), matched on the phone; raises MirrorUnavailable
        (retry later) or MirrorRejected (the base refuses them until fixed)."""
        ...

    async def upsert_payments(self, payments: Sequence[Payment]) -> None:
        """Create or update one row per payment (at most 10), matched on its checkout session (Weft's payment id
        when it has none); raises as upsert_numbers."""
        ...

    async def read_numbers(self) -> list[BaseNumberRow]:
        """Every row of the numbers table; raises MirrorUnavailable or MirrorRejected."""
        ...

    async def read_payments(self) -> list[BasePaymentRow]:
        """Every row of the payments table; raises MirrorUnavailable or MirrorRejected."""
        ...

    async def check(self) -> list[str]:
        """What the base lacks for the copy (a missing table, a missing field, a field of the wrong type), one
        sentence each; empty when it is ready."""
        ...
