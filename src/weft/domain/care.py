from __future__ import annotations

import enum
import re
from collections.abc import Collection
from datetime import datetime

import attrs

from weft.domain.payment import PaymentStatus
from weft.domain.subscriber import Consent

MEMBERSHIP_STATUSES = frozenset({PaymentStatus.COMPLETED, PaymentStatus.ACTIVE, PaymentStatus.CANCELLED})
"""A sign-up that completed: free or paid (completed, active), or a paid membership that ended and left the member
on the free tier (cancelled: UNSUB, or the subscription ended). Pending, processing, past-due, failed and expired
payments alone never make a member."""

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class SkipReason(enum.Enum):
    """Why a number gets no care message this month."""

    INVALID_NUMBER = "invalid_number"
    OPTED_OUT = "opted_out"
    NOT_A_MEMBER = "not_a_member"
    PAYMENT_NOT_ACTIVE = "payment_not_active"
    NO_CONSENT = "no_consent"
    ALREADY_SENT = "already_sent"
    QUIET_HOURS = "quiet_hours"


def care_skip_reason(consent: Consent, payments: Collection[PaymentStatus], valid_number: bool) -> SkipReason | None:
    """The one eligibility rule: a valid number that completed a sign-up and has subscribed; None means send."""
    if not valid_number:
        return SkipReason.INVALID_NUMBER
    if consent is Consent.OPTED_OUT:
        return SkipReason.OPTED_OUT
    if not payments:
        return SkipReason.NOT_A_MEMBER
    if not MEMBERSHIP_STATUSES.intersection(payments):
        return SkipReason.PAYMENT_NOT_ACTIVE
    if consent is not Consent.SUBSCRIBED:
        return SkipReason.NO_CONSENT
    return None


@attrs.frozen
class CareMonth:
    """A calendar month, "YYYY-MM": a member gets one care message per month."""

    value: str

    @classmethod
    def parse(cls, text: str) -> CareMonth:
        if not _MONTH.match(text.strip()):
            raise ValueError(f"month must look like 2026-12, not {text[:20]!r}")
        return cls(text.strip())

    @classmethod
    def of(cls, at: datetime) -> CareMonth:
        return cls(f"{at.year:04d}-{at.month:02d}")

    @property
    def campaign_id(self) -> str:
        return f"care-{self.value}"

    def message_key(self, phone: str) -> str:
        """The outbox idempotency key of this month's care message to one number."""
        return f"care:{self.value}:{phone}"
