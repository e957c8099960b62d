"""One membership per number: which tier a member is on, and how a sign-up or payment greets them."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from weft.domain.payment import Payment, PaymentStatus
from weft.domain.tiers import PaymentType

LIVE_PLAN = frozenset({PaymentStatus.ACTIVE, PaymentStatus.PAST_DUE})
"""A subscription in these states may still bill: it is the member's plan."""
SETTLED = frozenset({PaymentStatus.COMPLETED, PaymentStatus.ACTIVE, PaymentStatus.PAST_DUE, PaymentStatus.CANCELLED})
"""A payment (or free sign-up) in these states went through once, so its number has been a member."""


@attrs.frozen
class Tier:
    """What a member gives: the tier's name, its amount and its cadence; the free tier gives nothing."""

    name: str = "free"
    amount_cents: int = 0
    payment_type: PaymentType | None = None
    subscription_id: str | None = None

    @classmethod
    def of(cls, payment: Payment) -> Tier:
        if payment.tier == "free":
            return FREE
        return cls(payment.tier, payment.amount_cents, payment.payment_type, payment.subscription_id)

    @property
    def is_free(self) -> bool:
        return self.name == "free"

    @property
    def label(self) -> str:
        """"Free", "$10 monthly", "$25 one-time"."""
        if self.is_free:
            return "Free"
        cadence = "monthly" if self.payment_type is PaymentType.MONTHLY else "one-time"
        return f"{dollars(self.amount_cents)} {cadence}"


FREE = Tier()


class Greeting(enum.Enum):
    """What a completed sign-up or payment says to the member: a welcome once, a thank-you after that."""

    WELCOME = "welcome"
    THANKS_FOR_GIFT = "thanks_gift"
    THANKS_FOR_PLAN = "thanks_plan"
    ALREADY_MEMBER = "already_member"
    """A repeat free sign-up: told that they are a member already and that nothing changes."""


def dollars(cents: int) -> str:
    """$10, $1,000 or $12.50."""
    return f"${cents // 100:,}" if cents % 100 == 0 else f"${cents / 100:,.2f}"


def live_plan(payments: Iterable[Payment]) -> Payment | None:
    """The member's newest subscription that may still bill, if any."""
    live = [p for p in payments if p.is_subscription and p.subscription_id and p.status in LIVE_PLAN]
    return max(live, key=lambda p: (p.created_at, p.id), default=None)


def tier_after(current: Tier, changed: Payment, payments: Iterable[Payment]) -> Tier:
    """The member's tier once `changed` took effect: their live subscription whenever they have one, whatever else
    they paid; without one, a one-time gift sets the tier, a free sign-up leaves it as it was, and the end of the
    subscription they were on leaves them free."""
    plan = live_plan(payments)
    if plan is not None:
        return Tier.of(plan)
    if changed.tier == "free":
        return current
    if not changed.is_subscription:
        return Tier.of(changed) if changed.status is PaymentStatus.COMPLETED else current
    return FREE if current.subscription_id in (None, changed.subscription_id) else current


def first_sign_up(changed: Payment, payments: Iterable[Payment]) -> bool:
    """No other payment or sign-up of this number ever went through: this one makes them a member."""
    return not any(p.id != changed.id and p.status in SETTLED for p in payments)


def greeting_for(changed: Payment, welcomed_before: bool) -> Greeting:
    """A member is welcomed once; after that a gift or a new plan is thanked, and a repeat free sign-up is told
    that nothing changes."""
    if not welcomed_before:
        return Greeting.WELCOME
    if changed.tier == "free":
        return Greeting.ALREADY_MEMBER
    return Greeting.THANKS_FOR_PLAN if changed.is_subscription else Greeting.THANKS_FOR_GIFT
