from __future__ import annotations

import enum
from datetime import datetime

import attrs

from weft.domain.phone import PhoneNumber
from weft.domain.tiers import PaymentType


class PaymentStatus(enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


PAID_UP = frozenset({PaymentStatus.COMPLETED, PaymentStatus.ACTIVE})


@attrs.define
class Payment:
    """One purchase (or free sign-up): its tier, its Stripe ids, and where it stands."""

    id: str
    phone: PhoneNumber
    email: str
    tier: str
    amount_cents: int
    payment_type: PaymentType | None
    created_at: datetime
    updated_at: datetime
    status: PaymentStatus = PaymentStatus.PENDING
    checkout_session_id: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    past_due_notified: bool = False
    phone_proven: bool = False
    """The sign-up proved the phone (a valid link token, or the number had texted in): no double opt-in needed."""

    @property
    def is_subscription(self) -> bool:
        return self.payment_type is PaymentType.MONTHLY

    def settle(self, at: datetime, subscription_id: str | None = None) -> bool:
        """Mark paid (active for a subscription); True only the first time, so fulfilment runs once."""
        first = self.status not in PAID_UP and self.status is not PaymentStatus.CANCELLED
        if not first:
            return False
        self.status = PaymentStatus.ACTIVE if self.is_subscription else PaymentStatus.COMPLETED
        self.subscription_id = subscription_id or self.subscription_id
        self.updated_at = at
        return True

    def move_to(self, status: PaymentStatus, at: datetime) -> bool:
        """Change status; True when it changed."""
        if self.status is status:
            return False
        self.status = status
        self.updated_at = at
        if status is PaymentStatus.ACTIVE:
            self.past_due_notified = False
        return True

    def claim_past_due_notice(self) -> bool:
        """True once per past-due spell: the member is told about a failed payment a single time."""
        if self.past_due_notified:
            return False
        self.past_due_notified = True
        return True
