from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from weft.domain.messages import DeliveryStatus, InboundSms, OutboundSms, SendResult
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

