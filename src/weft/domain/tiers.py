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


TIER_REFUSED = "Choose one of the memberships on the page"
PAYMENT_TYPE_REFUSED = "Choose one-time or monthly"
NOT_A_NUMBER = "Enter the amount in whole dollars, like 25"
CENTS = "Amounts are in whole dollars: enter {low} or {high}, not {text}"
_WHOLE_DOLLARS = re.compile(r"\$?\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9})(?:\.0{1,2})?")
"""25, $25, 1,000, $1,000 and 25.00: commas in their thousands places, at most nine digits."""
_DOLLARS_AND_CENTS = re.compile(r"\$?\s*([0-9][0-9,]{0,12})\.([0-9]{1,2})")


def choose_tier(tier: object, amount: object, payment_type: object, bounds: AmountBounds) -> TierChoice:
    """Validate a tier choice; InvalidCheckout names the field that is wrong and says why, for a person."""
    if not isinstance(tier, str) or tier not in TIER_NAMES:
        raise InvalidCheckout("tier", TIER_REFUSED)
    if tier == "free":
        return TierChoice("free", 0, None)
    kind = _payment_type(payment_type)
    dollars = FIXED_TIERS[tier] if tier != "custom" else _custom_amount(amount, bounds)
    return TierChoice(tier, dollars, kind)


def bounds_message(bounds: AmountBounds) -> str:
    return f"Enter a whole-dollar amount between ${bounds.minimum:,} and ${bounds.maximum:,}"


def _payment_type(value: object) -> PaymentType:
    try:
        return PaymentType(value)
    except ValueError:
        raise InvalidCheckout("payment_type", PAYMENT_TYPE_REFUSED) from None


def _custom_amount(value: object, bounds: AmountBounds) -> int:
    if isinstance(value, str):
        value = dollars_from_text(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCheckout("amount", NOT_A_NUMBER)
    if not bounds.minimum <= value <= bounds.maximum:
        raise InvalidCheckout("amount", bounds_message(bounds))
    return value


def dollars_from_text(text: str) -> int:
    """Whole dollars as people write them ("25", "$25", "1,000"); InvalidCheckout with the reason otherwise."""
    text = text.strip()
    whole = _WHOLE_DOLLARS.fullmatch(text)
    if whole:
        return int(whole.group(1).replace(",", ""))
    cents = _DOLLARS_AND_CENTS.fullmatch(text)
    if cents and cents.group(1).replace(",", "").isdigit():
        low = int(cents.group(1).replace(",", ""))
        raise InvalidCheckout("amount", CENTS.format(low=f"{low:,}", high=f"{low + 1:,}", text=text))
    raise InvalidCheckout("amount", NOT_A_NUMBER)
