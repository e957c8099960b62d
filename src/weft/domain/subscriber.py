from __future__ import annotations

import enum
from datetime import datetime

import attrs

from weft.domain.messages import MessageKind
from weft.domain.phone import PhoneNumber


class Consent(enum.Enum):
    NONE = "none"
    """Texted us, but never asked for recurring messages: replies only."""
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

    def may_receive(self, kind: MessageKind) -> bool:
        """An opted-out number gets its opt-out confirmation and nothing else."""
        return not self.opted_out or kind is MessageKind.OPT_OUT_CONFIRMATION

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

    def leave_paid(self, at: datetime) -> None:
        self.membership = Membership.FREE
        self.paid_tier = None
        self.updated_at = at

    def _set_consent(self, consent: Consent, at: datetime, message_id: str | None, reason: str) -> bool:
        if self.consent is consent:
            return False
        self.consent = consent
        self.consent_changed_at = at
        self.consent_message_id = message_id
        self.updated_at = at
        self.changes.append(ConsentChange(consent, at, message_id, reason))
        return True
