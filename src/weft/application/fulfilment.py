from __future__ import annotations

from datetime import datetime

from weft.application.ports import Transaction
from weft.domain.journey import AuditEntry, Journey, Step
from weft.domain.payment import Payment
from weft.domain.subscriber import Membership, Subscriber


def fulfil(tx: Transaction, payment: Payment, now: datetime) -> Journey:
    """Inside the transaction that confirmed the payment: update the member and start its journey (idempotent)."""
    journey_id = f"jny_{payment.id}"
    existing = tx.get_journey(journey_id)
    if existing is not None:
        return existing
    subscriber = tx.get_subscriber(payment.phone) or Subscriber.first_contact(payment.phone, now)
    _update_member(subscriber, payment, now)
    tx.save_subscriber(subscriber)
    journey = Journey(id=journey_id, payment_id=payment.id, started_at=now)
    journey.done(Step.PAYMENT_PROCESSED, now, f"{payment.tier} {payment.status.value}")
    state = f"{subscriber.membership.value} member, consent {subscriber.consent.value}"
    journey.done(Step.DATABASE_UPDATED, now, state)
    tx.save_journey(journey, next_run_at=now)
    for step in (Step.PAYMENT_PROCESSED, Step.DATABASE_UPDATED):
        tx.audit(audit_step(journey, payment, step))
    return journey


def _update_member(subscriber: Subscriber, payment: Payment, now: datetime) -> None:
    if payment.tier == "free" and subscriber.membership is Membership.PAID:
        subscriber.email = payment.email  # joining free never ends a paid membership; UNSUB does
    else:
        tier = None if payment.tier == "free" else payment.tier
        subscriber.become_member(tier, payment.email, now, payment.customer_id, payment.subscription_id)
    if payment.phone_proven:
        subscriber.opt_in(now, None, reason=f"web sign-up ({payment.tier}) with a proven phone")
    else:
        subscriber.request_confirmation(now)


def audit_step(journey: Journey, payment: Payment, step: Step) -> AuditEntry:
    record = journey.steps[step]
    action = f"journey.{step.value}" if record.ok else f"journey.{step.value}.failed"
    return AuditEntry(action=action, at=record.at, phone=payment.phone.e164, payment_id=payment.id,
                      details={"journey_id": journey.id, "detail": record.detail})
