from __future__ import annotations

from datetime import UTC, datetime, timedelta

from weft.domain.journey import STEPS, Journey, Step
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.tiers import PaymentType

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATER = AT + timedelta(minutes=5)


def payment(payment_type: PaymentType | None = PaymentType.ONE_TIME,
            status: PaymentStatus = PaymentStatus.PENDING) -> Payment:
    return Payment(id="pay_1", phone=PhoneNumber("+14155550123"), email="ada@example.org", tier="10",
                   amount_cents=1000, payment_type=payment_type, created_at=AT, updated_at=AT, status=status)


def test_settling_a_one_time_payment_completes_it_once() -> None:
    p = payment()
    assert p.settle(LATER)
    assert not p.settle(LATER + timedelta(minutes=1))
    assert (p.status, p.updated_at) == (PaymentStatus.COMPLETED, LATER)


def test_settling_a_subscription_activates_it_with_its_id() -> None:
    p = payment(PaymentType.MONTHLY)
    assert p.settle(LATER, "sub_1")
    assert (p.status, p.subscription_id, p.is_subscription) == (PaymentStatus.ACTIVE, "sub_1", True)


def test_settling_again_does_not_replace_the_subscription_id() -> None:
    p = payment(PaymentType.MONTHLY)
    p.settle(LATER, "sub_1")
    assert not p.settle(LATER, "sub_2")
    assert p.subscription_id == "sub_1"


def test_a_processing_or_failed_payment_can_still_settle() -> None:
    assert payment(status=PaymentStatus.PROCESSING).settle(LATER)
    assert payment(status=PaymentStatus.FAILED).settle(LATER)


def test_a_cancelled_payment_never_settles() -> None:
    p = payment(PaymentType.MONTHLY, PaymentStatus.CANCELLED)
    assert not p.settle(LATER, "sub_1")
    assert p.status is PaymentStatus.CANCELLED


def test_moving_to_the_same_status_is_no_change() -> None:
    p = payment()
    assert not p.move_to(PaymentStatus.PENDING, LATER)
    assert p.updated_at == AT
    assert p.move_to(PaymentStatus.EXPIRED, LATER)
    assert (p.status, p.updated_at) == (PaymentStatus.EXPIRED, LATER)


def test_a_past_due_notice_is_claimed_once_per_spell() -> None:
    p = payment(PaymentType.MONTHLY, PaymentStatus.ACTIVE)
    p.move_to(PaymentStatus.PAST_DUE, AT)
    assert p.claim_past_due_notice()
    assert not p.claim_past_due_notice()


def test_becoming_active_again_starts_a_new_past_due_spell() -> None:
    p = payment(PaymentType.MONTHLY, PaymentStatus.PAST_DUE)
    p.claim_past_due_notice()
    p.move_to(PaymentStatus.ACTIVE, LATER)
    p.move_to(PaymentStatus.PAST_DUE, LATER)
    assert p.claim_past_due_notice()


def test_a_new_journey_has_every_step_to_run_in_order() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    assert journey.to_run() == list(STEPS)
    assert (journey.failed_steps, journey.completed_at) == ({}, None)


def test_a_failed_step_is_reported_with_its_error_and_runs_again() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    journey.done(Step.PAYMENT_PROCESSED, AT)
    journey.fail(Step.SMS_SENT, AT, "HTTP 400")
    assert journey.failed_steps == {Step.SMS_SENT: "HTTP 400"}
    assert journey.to_run() == [Step.DATABASE_UPDATED, Step.EMAIL_SENT, Step.SMS_SENT, Step.CUSTOMER_ACCESS_GRANTED]
    assert not journey.succeeded(Step.SMS_SENT)


def test_a_step_done_after_failing_is_no_longer_failed() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    journey.fail(Step.EMAIL_SENT, AT, "550")
    journey.done(Step.EMAIL_SENT, LATER, "sent")
    assert journey.failed_steps == {}
    assert journey.succeeded(Step.EMAIL_SENT)


def test_a_journey_completes_when_its_last_step_is_done() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    for step in STEPS[:-1]:
        journey.done(step, AT)
    assert journey.to_run() == [STEPS[-1]]
    journey.done(STEPS[-1], LATER)
    assert (journey.completed_at, journey.to_run()) == (LATER, [])


def test_a_journey_with_a_failed_step_is_not_completed() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    journey.fail(Step.SMS_SENT, AT, "HTTP 400")
    for step in STEPS:
        if step is not Step.SMS_SENT:
            journey.done(step, AT)
    assert journey.completed_at is None


def test_completion_time_is_kept_when_a_step_is_redone() -> None:
    journey = Journey("jny_1", "pay_1", AT)
    for step in STEPS:
        journey.done(step, AT)
    journey.done(Step.EMAIL_SENT, LATER)
    assert journey.completed_at == AT
