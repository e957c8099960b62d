from __future__ import annotations

import enum
import re

import attrs

from weft.domain.errors import InvalidCheckout

FIXED_TIERS: dict[str, int] = {"5": 5, "10": 10, "25": 25, "50": 50, "75": 75, "100": 100}
TIER_NAMES = ("free", *FIXED_TIERS, "custom")


class PaymentType(enum.Enum):
    ONE_TIME = "one_time"
    MONTHLY = "monthly"


@attrs.frozen
class AmountBounds:
    minimum: int = 1
    maximum: int = 1000


@attrs.frozen
class TierChoice:
    """What a member chose on the landing page; amounts are whole dollars."""

    tier: str
    dollars: int
    payment_type: PaymentType | None

    @property
    def is_free(self) -> bool:
        return self.tier == "free"

    @property
    def cents(self) -> int:
        return self.dollars * 100

    @property
    def label(self) -> str:
        if self.is_free:
            return "Free"
        cadence = "monthly" if self.payment_type is PaymentType.MONTHLY else "one-time"
        return f"${self.dollars} {cadence}"


def choose_tier(tier: object, amount: object, payment_type: object, bounds: AmountBounds) -> TierChoice:
    """Validate a tier choice; InvalidCheckout names the field that is wrong."""
    if not isinstance(tier, str) or tier not in TIER_NAMES:
        raise InvalidCheckout("tier", f"must be one of {', '.join(TIER_NAMES)}")
    if tier == "free":
        return TierChoice("free", 0, None)
    kind = _payment_type(payment_type)
    dollars = FIXED_TIERS[tier] if tier != "custom" else _custom_amount(amount, bounds)
    return TierChoice(tier, dollars, kind)


def _payment_type(value: object) -> PaymentType:
    try:
        return PaymentType(value)
    except ValueError:
        raise InvalidCheckout("payment_type", "must be one_time or monthly") from None


def _custom_amount(value: object, bounds: AmountBounds) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCheckout("amount", "must be a whole number of dollars")
    if not bounds.minimum <= value <= bounds.maximum:
        raise InvalidCheckout("amount", f"must be between ${bounds.minimum} and ${bounds.maximum:,}")
    return value
