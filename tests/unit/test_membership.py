"""The membership rule: a member's tier follows their live subscription, not their latest payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from weft.domain.membership import FREE, Greeting, Tier, first_sign_up, greeting_for, live_plan, tier_after
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Subscriber
from weft.domain.tiers import PaymentType

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PHONE = PhoneNumber("+14155550123")


def paid(payment_id: str, dollars: int, payment_type: PaymentType | None, status: PaymentStatus,
         minutes: int = 0, tier: str | None = None) -> Payment:
    subscription = f"sub_{payment_id}" if payment_type is PaymentType.MONTHLY else None
    at = AT + timedelta(minutes=minutes)
    return Payment(id=payment_id, phone=PHONE, email="ada@example.org", tier=tier or str(dollars),
                   amount_cents=dollars * 100, payment_type=payment_type, created_at=at, updated_at=at,
                   status=status, subscription_id=subscription)


MONTHLY_10 = paid("p1", 10, PaymentType.MONTHLY, PaymentStatus.ACTIVE)
GIFT_25 = paid("p2", 25, PaymentType.ONE_TIME, PaymentStatus.COMPLETED, minutes=5)
FREE_SIGN_UP = paid("p0", 0, None, PaymentStatus.COMPLETED, minutes=-5, tier="free")


def test_a_one_time_gift_from_a_monthly_member_does_not_change_their_tier() -> None:
    tier = tier_after(Tier.of(MONTHLY_10), GIFT_25, [MONTHLY_10, GIFT_25])

    assert tier == Tier("10", 1000, PaymentType.MONTHLY, "sub_p1")
    assert tier.label == "$10 monthly"


def test_a_one_time_gift_sets_the_tier_of_a_member_without_a_subscription() -> None:
    tier = tier_after(FREE, GIFT_25, [FREE_SIGN_UP, GIFT_25])

    assert tier.label == "$25 one-time"


def test_a_new_monthly_plan_is_the_tier_even_after_a_bigger_gift() -> None:
    monthly = paid("p3", 5, PaymentType.MONTHLY, PaymentStatus.ACTIVE, minutes=10)

    assert tier_after(Tier.of(GIFT_25), monthly, [GIFT_25, monthly]).label == "$5 monthly"


def test_a_free_sign_up_leaves_a_paid_tier_as_it_was() -> None:
    assert tier_after(Tier.of(GIFT_25), FREE_SIGN_UP, [GIFT_25, FREE_SIGN_UP]) == Tier.of(GIFT_25)


def test_a_past_due_subscription_is_still_the_plan() -> None:
    past_due = attrs.evolve(MONTHLY_10, status=PaymentStatus.PAST_DUE)

    assert live_plan([past_due, GIFT_25]) == past_due
    assert tier_after(FREE, GIFT_25, [past_due, GIFT_25]).label == "$10 monthly"


def test_the_end_of_the_members_subscription_leaves_them_free_even_after_a_gift() -> None:
    cancelled = attrs.evolve(MONTHLY_10, status=PaymentStatus.CANCELLED)

    assert tier_after(Tier.of(MONTHLY_10), cancelled, [cancelled, GIFT_25]) == FREE


def test_the_end_of_another_subscription_leaves_the_live_one_as_the_tier() -> None:
    second = paid("p4", 50, PaymentType.MONTHLY, PaymentStatus.ACTIVE, minutes=1)
    cancelled = attrs.evolve(MONTHLY_10, status=PaymentStatus.CANCELLED)

    assert tier_after(Tier.of(second), cancelled, [cancelled, second]).label == "$50 monthly"


def test_a_subscriber_applying_a_gift_keeps_the_plan_and_its_subscription() -> None:
    member = Subscriber.first_contact(PHONE, AT)
    member.apply_payment(MONTHLY_10, [MONTHLY_10], AT)

    member.apply_payment(GIFT_25, [MONTHLY_10, GIFT_25], AT)

    assert (member.paid_tier, member.stripe_subscription_id, member.tier.label) == ("10", "sub_p1", "$10 monthly")


def test_large_amounts_read_with_a_thousands_separator() -> None:
    assert Tier("custom", 100_000, PaymentType.MONTHLY).label == "$1,000 monthly"
    assert FREE.label == "Free"


def test_only_the_first_settled_sign_up_of_a_number_is_its_first() -> None:
    pending = paid("p5", 10, PaymentType.ONE_TIME, PaymentStatus.PENDING)

    assert first_sign_up(GIFT_25, [pending, GIFT_25])
    assert not first_sign_up(GIFT_25, [FREE_SIGN_UP, GIFT_25])


def test_a_member_is_welcomed_once_and_thanked_after() -> None:
    assert greeting_for(GIFT_25, welcomed_before=False) is Greeting.WELCOME
    assert greeting_for(GIFT_25, welcomed_before=True) is Greeting.THANKS_FOR_GIFT
    assert greeting_for(MONTHLY_10, welcomed_before=True) is Greeting.THANKS_FOR_PLAN
    assert greeting_for(FREE_SIGN_UP, welcomed_before=True) is Greeting.ALREADY_MEMBER


def test_a_second_join_word_within_ten_minutes_gets_no_second_link() -> None:
    member = Subscriber.first_contact(PHONE, AT)

    assert member.join(AT, "in-1", "LOVE")
    assert not member.join(AT + timedelta(minutes=9), "in-2", "LOVE")
    assert member.join(AT + timedelta(minutes=10), "in-3", "LOVE")


def test_a_join_word_that_brings_an_opted_out_number_back_always_gets_a_link() -> None:
    member = Subscriber.first_contact(PHONE, AT)
    member.join(AT, "in-1", "LOVE")
    member.opt_out(AT + timedelta(minutes=1), "in-2")

    assert member.join(AT + timedelta(minutes=2), "in-3", "LOVE")
