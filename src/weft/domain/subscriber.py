from __future__ import annotations

import enum
from datetime import datetime

import attrs

from weft.domain.messages import REPLY_KINDS, MessageKind
from weft.domain.phone import PhoneNumber


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

    def leave_paid(self, at: datetime, forget_stripe: bool = False) -> str | None:
        """Back to the free tier; returns the subscription to cancel, if any. STOP also forgets the Stripe ids."""
        subscription = self.stripe_subscription_id
        self.membership = Membership.FREE
        self.paid_tier = None
        self.stripe_subscription_id = None
        if forget_stripe:
            self.stripe_customer_id = None
        self.updated_at = at
        return subscription

    def become_member(self, tier: str | None, email: str, at: datetime, customer_id: str | None = None,
                      subscription_id: str | None = None) -> None:
        """Record a completed sign-up: free when tier is None, else the paid tier with its Stripe ids."""
        self.membership = Membership.FREE if tier is None else Membership.PAID
        self.paid_tier = tier
        self.email = email
        self.stripe_customer_id = customer_id or self.stripe_customer_id
        self.stripe_subscription_id = subscription_id or self.stripe_subscription_id
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
