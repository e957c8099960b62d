from __future__ import annotations

import pytest

from weft.domain.errors import InvalidCheckout
from weft.domain.tiers import FIXED_TIERS, AmountBounds, PaymentType, TierChoice, choose_tier

BOUNDS = AmountBounds()


def rejected_field(tier: object, amount: object = None, payment_type: object = "one_time",
                   bounds: AmountBounds = BOUNDS) -> str:
    with pytest.raises(InvalidCheckout) as raised:
        choose_tier(tier, amount, payment_type, bounds)
    return raised.value.field


@pytest.mark.parametrize("tier", sorted(FIXED_TIERS))
def test_each_fixed_tier_costs_its_named_amount(tier: str) -> None:
    choice = choose_tier(tier, None, "one_time", BOUNDS)
    assert (choice.tier, choice.dollars, choice.cents) == (tier, int(tier), int(tier) * 100)


def test_a_fixed_tier_ignores_the_amount_sent_with_it() -> None:
    assert choose_tier("25", 999, "monthly", BOUNDS).dollars == 25


@pytest.mark.parametrize(("amount", "dollars"), [(1, 1), (1000, 1000), (37, 37), ("25", 25), (" 25 ", 25)])
def test_custom_tier_takes_whole_dollars_as_a_number_or_digit_string(amount: object, dollars: int) -> None:
    assert choose_tier("custom", amount, "one_time", BOUNDS) == TierChoice("custom", dollars, PaymentType.ONE_TIME)


@pytest.mark.parametrize("amount", [0, 1001, -5, "0", "1001"])
def test_custom_amounts_outside_the_bounds_are_rejected(amount: object) -> None:
    assert rejected_field("custom", amount) == "amount"


@pytest.mark.parametrize("amount", [12.5, 10.0, "abc", "12.5", "-5", "", True, False, None, [10]])
def test_custom_amounts_that_are_not_whole_dollars_are_rejected(amount: object) -> None:
    assert rejected_field("custom", amount) == "amount"


@pytest.mark.parametrize("amount", ["²", "1" * 5000])
def test_digit_like_strings_that_int_cannot_read_are_rejected_as_the_amount(amount: str) -> None:
    assert rejected_field("custom", amount) == "amount"


def test_the_bounds_are_configurable() -> None:
    bounds = AmountBounds(minimum=5, maximum=50)
    assert rejected_field("custom", 4, bounds=bounds) == "amount"
    assert rejected_field("custom", 51, bounds=bounds) == "amount"
    assert choose_tier("custom", 50, "one_time", bounds).dollars == 50


@pytest.mark.parametrize("tier", ["gold", "Free", "", "15", 10, None])
def test_an_unknown_tier_is_rejected(tier: object) -> None:
    assert rejected_field(tier) == "tier"


@pytest.mark.parametrize("payment_type", [None, "", "yearly", "ONE_TIME", 1])
def test_a_paid_tier_needs_a_known_payment_type(payment_type: object) -> None:
    assert rejected_field("10", payment_type=payment_type) == "payment_type"


def test_a_bad_payment_type_is_reported_before_a_bad_custom_amount() -> None:
    assert rejected_field("custom", "abc", payment_type="yearly") == "payment_type"


def test_free_ignores_amount_and_payment_type() -> None:
    choice = choose_tier("free", "abc", "yearly", BOUNDS)
    assert choice == TierChoice("free", 0, None)
    assert (choice.is_free, choice.cents, choice.label) == (True, 0, "Free")


def test_monthly_and_one_time_choices_are_labelled_with_their_cadence() -> None:
    assert choose_tier("custom", 40, "monthly", BOUNDS).label == "$40 monthly"
    assert choose_tier("10", None, "one_time", BOUNDS).label == "$10 one-time"


@pytest.mark.parametrize(("amount", "dollars"), [("1,000", 1000), ("$25", 25), ("$1,000", 1000), ("25.00", 25),
                                                 ("$ 40", 40)])
def test_custom_amounts_are_read_as_people_write_them(amount: str, dollars: int) -> None:
    assert choose_tier("custom", amount, "one_time", BOUNDS).dollars == dollars


def test_a_custom_amount_with_cents_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidCheckout) as raised:
        choose_tier("custom", "12.50", "one_time", BOUNDS)
    assert (raised.value.field, str(raised.value)) == (
        "amount", "Amounts are in whole dollars: enter 12 or 13, not 12.50")


@pytest.mark.parametrize(("amount", "message"), [
    ("1,0000", "Enter the amount in whole dollars, like 25"),
    ("1001", "Enter a whole-dollar amount between $1 and $1,000"),
    ("$2,000", "Enter a whole-dollar amount between $1 and $1,000"),
    ("1" * 5000 + ".50", "Enter the amount in whole dollars, like 25"),
])
def test_a_refused_custom_amount_says_what_to_enter(amount: str, message: str) -> None:
    with pytest.raises(InvalidCheckout) as raised:
        choose_tier("custom", amount, "one_time", BOUNDS)
    assert str(raised.value) == message
