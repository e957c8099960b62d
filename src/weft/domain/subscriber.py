from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from weft.domain.membership import Tier, tier_after
from weft.domain.messages import REPLY_KINDS, MessageKind
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.tiers import PaymentType

JOIN_LINK_QUIET = timedelta(minutes=10)
"""A join word texted again this soon after a link was sent gets no second link: the first one still works."""


class Consent(enum.Enum):
    NONE = "none"
    """Texted us, but never asked for recurring messages: replies only."""
    PENDING = "pending"
    """Signed up on the web with an unproven phone: replies only, until the number texts YES."""
    SUBSCRIBED = "subscribed"
    OPTED_OUT = "opted_out"


class Membership(enum.Enum):
    FREE = "free"
    PAID = "paid"


@attrs.frozen
class ConsentChange:
    """One change of messaging consent: what it became, when, and which inbound message caused it."""

    consent: Consent
    at: datetime
    message_id: str | None
    reason: str


@attrs.define
class Subscriber:
    phone: PhoneNumber
    created_at: datetime
    updated_at: datetime
    consent: Consent = Consent.NONE
    membership: Membership = Membership.FREE
    paid_tier: str | None = None
    email: str | None = None
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    consent_changed_at: datetime | None = None
    consent_message_id: str | None = None
    last_message: str | None = None
    last_message_at: datetime | None = None
    paid_amount_cents: int | None = None
    paid_payment_type: PaymentType | None = None
    join_link_at: datetime | None = None
    """When the last join link was sent in answer to a join word."""
    changes: list[ConsentChange] = attrs.field(factory=list)
    """Consent changes made since load; the store appends them to the history."""

    @classmethod
    def first_contact(cls, phone: PhoneNumber, at: datetime) -> Subscriber:
        return cls(phone=phone, created_at=at, updated_at=at)

    @property
    def opted_out(self) -> bool:
        return self.consent is Consent.OPTED_OUT

    @property
    def texted_in(self) -> bool:
        """The number has texted us, which proves the person holds it."""
        return self.last_message_at is not None

    def may_receive(self, kind: MessageKind) -> bool:
        """An opted-out number gets its opt-out confirmation and answers to HELP, nothing else; without consent,
        replies only."""
        if self.opted_out:
            # Carriers expect HELP answered at any time; its answer to an opted-out number says how to rejoin.
            return kind in (MessageKind.OPT_OUT_CONFIRMATION, MessageKind.HELP)
        return self.consent is Consent.SUBSCRIBED or kind in REPLY_KINDS

    def record_inbound(self, text: str, at: datetime) -> None:
        self.last_message = text
        self.last_message_at = at
        self.updated_at = at

    def opt_out(self, at: datetime, message_id: str | None, reason: str = "keyword") -> bool:
        """Stop all messages; True when this changed the consent (so the one confirmation is due)."""
        return self._set_consent(Consent.OPTED_OUT, at, message_id, reason)

    def opt_in(self, at: datetime, message_id: str | None, reason: str = "keyword") -> bool:
        """Resume messages; True when the number had opted out."""
        return self._set_consent(Consent.SUBSCRIBED, at, message_id, reason)

    @property
    def tier(self) -> Tier:
        """The tier the member is on now, with its amount and cadence."""
        if self.membership is Membership.FREE or self.paid_tier is None:
            return Tier()
        return Tier(self.paid_tier, self.paid_amount_cents or 0, self.paid_payment_type, self.stripe_subscription_id)

    def leave_paid(self, at: datetime, forget_stripe: bool = False) -> str | None:
        """Back to the free tier; returns the subscription to cancel, if any. STOP also forgets the Stripe ids."""
        subscription = self.stripe_subscription_id
        self._take(Tier(), at)
        if forget_stripe:
            self.stripe_customer_id = None
        return subscription

    def apply_payment(self, changed: Payment, payments: Iterable[Payment], at: datetime) -> Tier:
        """Membership follows the member's live subscription, not the latest payment (see tier_after); `payments`
        are all of the number's, `changed` among them. Returns the tier the member is on now."""
        tier = tier_after(self.tier, changed, payments)
        if tier != self.tier:
            self._take(tier, at)
        return tier

    def complete_payment(self, payment: Payment, payments: Iterable[Payment], at: datetime) -> Tier:
        """A payment went through: its email and customer become the member's, and the tier follows the rule of
        apply_payment."""
        self.email = payment.email or self.email
        self.stripe_customer_id = payment.customer_id or self.stripe_customer_id
        return self.apply_payment(payment, payments, at)

    def join(self, at: datetime, message_id: str | None, word: str) -> bool:
        """A join word subscribes the number; True when a join link is due (not when one went out in the last
        ten minutes, unless this text brought the number back)."""
        rejoined = self.opt_in(at, message_id, reason=f"keyword {word}")
        if not rejoined and self.join_link_at is not None and at - self.join_link_at < JOIN_LINK_QUIET:
            return False
        self.join_link_at = at
        return True

    def _take(self, tier: Tier, at: datetime) -> None:
        self.membership = Membership.FREE if tier.is_free else Membership.PAID
        self.paid_tier = None if tier.is_free else tier.name
        self.paid_amount_cents = None if tier.is_free else tier.amount_cents
        self.paid_payment_type = tier.payment_type
        self.stripe_subscription_id = tier.subscription_id
        self.updated_at = at

    def request_confirmation(self, at: datetime) -> bool:
        """A web sign-up with an unproven phone waits for YES; True when a confirmation request is due."""
        if self.consent is not Consent.NONE:
            return False
        return self._set_consent(Consent.PENDING, at, None, "web sign-up, awaiting YES")

    def _set_consent(self, consent: Consent, at: datetime, message_id: str | None, reason: str) -> bool:
        if self.consent is consent:
            return False
        self.consent = consent
        self.consent_changed_at = at
        self.consent_message_id = message_id
        self.updated_at = at
        self.changes.append(ConsentChange(consent, at, message_id, reason))
        return True
