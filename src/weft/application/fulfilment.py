from __future__ import annotations

from datetime import datetime

from weft.application.journey_steps import audit_step
from weft.application.unit_of_work import Cancellation, Transaction
from weft.domain.journey import Journey, Step
from weft.domain.membership import Greeting, first_sign_up, greeting_for
from weft.domain.payment import Payment
from weft.domain.subscriber import Consent, Subscriber


def welcomed_key(payment: Payment) -> str:
    """The once-only key recording that this number was welcomed (see ProviderEvents.record)."""
    return f"welcomed:{payment.phone.e164}"


def fulfil(tx: Transaction, payment: Payment, now: datetime) -> Journey:
    """Inside the transaction that confirmed the payment: update the member and start its journey (idempotent)."""
    journey_id = f"jny_{payment.id}"
    existing = tx.journeys.get(journey_id)
    if existing is not None:
        return existing
    subscriber = tx.members.get(payment.phone) or Subscriber.first_contact(payment.phone, now)
    payments = tx.payments.of_member(payment.phone)
    greeting = _greeting(tx, payment, payments, now)
    subscriber.complete_payment(payment, payments, now)
    skip_sms = _update_consent(tx, subscriber, payment, now)
    tx.members.save(subscriber)
    journey = Journey(id=journey_id, payment_id=payment.id, started_at=now, greeting=greeting)
    journey.done(Step.PAYMENT_PROCESSED, now, f"{payment.tier} {payment.status.value}")
    state = f"{subscriber.membership.value} member, consent {subscriber.consent.value}"
    journey.done(Step.DATABASE_UPDATED, now, state)
    if skip_sms:
        journey.done(Step.SMS_SENT, now, f"skipped: {skip_sms}")
    tx.journeys.save(journey)
    tx.journeys.schedule(journey.id, now)
    for step in journey.steps:
        tx.audit.add(audit_step(journey, payment.phone.e164, step))
    return journey


def _greeting(tx: Transaction, payment: Payment, payments: list[Payment], now: datetime) -> Greeting:
    """Decided in the transaction that settles the payment: the once-only key makes two payments settling at once
    (or a retry) agree that only one of them welcomes the member."""
    first = first_sign_up(payment, payments) and tx.events.record(welcomed_key(payment), now)
    return greeting_for(payment, welcomed_before=not first)


def _update_consent(tx: Transaction, subscriber: Subscriber, payment: Payment, now: datetime) -> str | None:
    """Record the consent the sign-up gives; returns why no SMS may go out, when none may."""
    if subscriber.opted_out and (subscriber.consent_changed_at or now) >= payment.created_at:
        return _stopped_during_checkout(tx, subscriber, payment, now)
    if payment.phone_proven:
        subscriber.opt_in(now, None, reason=f"web sign-up ({payment.tier}) with a proven phone")
        return None
    if subscriber.request_confirmation(now) or subscriber.consent is Consent.SUBSCRIBED:
        return None
    return "the number opted out" if subscriber.opted_out else "confirmation already requested"


def _stopped_during_checkout(tx: Transaction, subscriber: Subscriber, payment: Payment, now: datetime) -> str:
    """STOP arrived after the checkout opened: the payment stands, but no texts and no subscription."""
    subscription = subscriber.leave_paid(now) if payment.subscription_id else None
    if subscription:
        tx.cancellations.request(Cancellation(subscription, subscriber.phone, now, next_attempt_at=now))
    return "the number opted out during checkout"

