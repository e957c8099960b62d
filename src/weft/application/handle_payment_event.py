from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from weft.application.fulfilment import fulfil
from weft.application.phone_numbers import normalise_phone
from weft.application.ports import (
    Clock,
    IdGenerator,
    PaymentEvent,
    PaymentGateway,
    SessionState,
    SubscriptionState,
)
from weft.application.replies import Replies
from weft.application.unit_of_work import Store, Transaction
from weft.domain.errors import InvalidPhoneNumber, PaymentProviderError
from weft.domain.journey import AuditEntry
from weft.domain.messages import MessageKind, OutboundSms, outbox_key
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.tiers import FIXED_TIERS, PaymentType

SESSION_EVENTS = frozenset({
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired",
})
SUBSCRIPTION_EVENTS = frozenset({
    "invoice.paid", "invoice.payment_failed", "customer.subscription.updated", "customer.subscription.deleted",
})
_SUBSCRIPTION_STATUS = {
    "active": PaymentStatus.ACTIVE, "trialing": PaymentStatus.ACTIVE, "past_due": PaymentStatus.PAST_DUE,
    "unpaid": PaymentStatus.PAST_DUE, "canceled": PaymentStatus.CANCELLED,
    "incomplete_expired": PaymentStatus.CANCELLED,
}


class EventOutcome(enum.Enum):
    RECEIVED = "received"
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@attrs.frozen
class _SessionFacts:
    session: SessionState
    phone: str | None


def handled(event_type: str) -> bool:
    """Whether events of this type change anything (others are acknowledged and dropped)."""
    return event_type in SESSION_EVENTS or event_type in SUBSCRIPTION_EVENTS


class HandlePaymentEvent:
    """Apply a verified payment event once: re-read the object from the provider (events arrive in any order),
    then change payments, members and journeys in one transaction with the event id recorded."""

    def __init__(self, store: Store, gateway: PaymentGateway, clock: Clock, ids: IdGenerator, replies: Replies,
                 on_journey: Callable[[], None] = lambda: None, on_queued: Callable[[], None] = lambda: None) -> None:
        self._store, self._gateway, self._clock, self._ids = store, gateway, clock, ids
        self._replies, self._on_journey, self._on_queued = replies, on_journey, on_queued

    async def __call__(self, event: PaymentEvent) -> EventOutcome:
        if not handled(event.type):
            return EventOutcome.IGNORED
        facts: _SessionFacts | SubscriptionState | str | None
        try:
            facts = await self._facts(event)
        except PaymentProviderError as exc:
            # Permanent (e.g. an object this account cannot see): retrying for days would not help.
            facts = str(exc)
        outcome = await self._store.transaction(lambda tx: self._apply(tx, event, facts))
        self._on_journey()
        self._on_queued()
        return outcome

    async def _facts(self, event: PaymentEvent) -> _SessionFacts | SubscriptionState | None:
        if event.type in SESSION_EVENTS:
            return await self._session_facts(str(event.object.get("id", "")))
        return await self._subscription_facts(event)

    async def _session_facts(self, session_id: str) -> _SessionFacts:
        session = await self._gateway.retrieve_checkout_session(session_id)
        phone = session.phone
        if not phone and session.customer_id:
            phone = await self._customer_phone(session.customer_id)
        return _SessionFacts(session, phone or session.metadata.get("phone"))

    async def _customer_phone(self, customer_id: str) -> str | None:
        try:
            return (await self._gateway.retrieve_customer(customer_id)).phone
        except PaymentProviderError:
            return None  # e.g. the customer was deleted: the session's metadata still names the phone

    async def _subscription_facts(self, event: PaymentEvent) -> SubscriptionState | None:
        obj = event.object
        subscription_id = _invoice_subscription(obj) if event.type.startswith("invoice.") else obj.get("id")
        if not isinstance(subscription_id, str) or not subscription_id:
            return None
        return await self._gateway.retrieve_subscription(subscription_id)

    def _apply(
        self, tx: Transaction, event: PaymentEvent, facts: _SessionFacts | SubscriptionState | str | None
    ) -> EventOutcome:
        now = self._clock.now()
        if not tx.events.record(event.id, now):
            return EventOutcome.DUPLICATE
        if isinstance(facts, _SessionFacts):
            self._session_event(tx, event.type, facts, now)
        elif isinstance(facts, SubscriptionState):
            self._subscription_event(tx, event, facts, now)
        else:
            tx.audit.add(AuditEntry("payment_event.unresolved", now,
                                details={"event": event.id, "type": event.type, "error": facts or "no object id"}))
        return EventOutcome.PROCESSED

    def _session_event(self, tx: Transaction, event_type: str, facts: _SessionFacts, now: datetime) -> None:
        session = facts.session
        payment = tx.payments.by_session(session.id) or self._payment_from_session(facts, now)
        if payment is None:
            tx.audit.add(AuditEntry("payment.unmatched", now, details={"session_id": session.id, "event": event_type}))
            return
        payment.customer_id = session.customer_id or payment.customer_id
        if event_type == "checkout.session.expired":
            self._move(tx, payment, PaymentStatus.EXPIRED if payment.status is PaymentStatus.PENDING else None, now)
        elif event_type == "checkout.session.async_payment_failed":
            self._move(tx, payment, PaymentStatus.FAILED, now)
        elif session.payment_status in ("paid", "no_payment_required"):
            self._settle(tx, payment, session, now)
        else:
            self._move(tx, payment, PaymentStatus.PROCESSING, now)

    def _settle(self, tx: Transaction, payment: Payment, session: SessionState, now: datetime) -> None:
        first = payment.settle(now, session.subscription_id)
        if first and session.amount_total is not None:
            payment.amount_cents = session.amount_total  # what was charged, after any promotion code
        tx.payments.save(payment)
        if first:
            tx.audit.add(_payment_audit("payment.completed", payment, now))
            fulfil(tx, payment, now)

    def _move(self, tx: Transaction, payment: Payment, status: PaymentStatus | None, now: datetime) -> bool:
        changed = status is not None and payment.move_to(status, now)
        tx.payments.save(payment)
        if changed:
            tx.audit.add(_payment_audit(f"payment.{payment.status.value}", payment, now))
        return changed

    def _subscription_event(self, tx: Transaction, event: PaymentEvent, sub: SubscriptionState, now: datetime) -> None:
        event_type = event.type
        payment = tx.payments.by_subscription(sub.id)
        if payment is None:
            tx.audit.add(AuditEntry("subscription.unmatched", now, details={"subscription_id": sub.id,
                                                                         "event": event_type}))
            return
        # The re-read subscription decides, not the event: a stale failure must not revive a cancelled member.
        changed = self._move(tx, payment, _SUBSCRIPTION_STATUS.get(sub.status), now)
        if event_type == "invoice.paid":
            tx.audit.add(_payment_audit("subscription.renewed", payment, now))
        if changed and payment.status is PaymentStatus.CANCELLED:
            self._downgrade(tx, payment, now)
        if event_type == "invoice.payment_failed" and payment.status is PaymentStatus.PAST_DUE \
                and payment.claim_past_due_notice():
            tx.payments.save(payment)
            self._notify_past_due(tx, payment, event.id, now)

    def _downgrade(self, tx: Transaction, payment: Payment, now: datetime) -> None:
        """The subscription ended: the member follows the plan they still have, else goes back to free."""
        subscriber = tx.members.get(payment.phone)
        if subscriber is None:
            return
        before = subscriber.tier
        tier = subscriber.apply_payment(payment, tx.payments.of_member(payment.phone), now)
        if tier != before:
            tx.members.save(subscriber)
            tx.audit.add(_payment_audit("member.downgraded_to_free" if tier.is_free else "member.tier_changed",
                                        payment, now))

    def _notify_past_due(self, tx: Transaction, payment: Payment, event_id: str, now: datetime) -> None:
        subscriber = tx.members.get(payment.phone)
        if subscriber is None or not subscriber.may_receive(MessageKind.PAYMENT_NOTICE):
            return
        notice = OutboundSms(outbox_key("notice", event_id), payment.phone, self._replies.text("payment_failed"),
                             MessageKind.PAYMENT_NOTICE)
        tx.outbox.enqueue_once(notice, now, now)
        tx.audit.add(_payment_audit("member.told_payment_failed", payment, now))

    def _payment_from_session(self, facts: _SessionFacts, now: datetime) -> Payment | None:
        """A session Weft did not open (e.g. made in the dashboard): recorded from what the provider says."""
        session = facts.session
        try:
            phone = normalise_phone(facts.phone or "")
        except InvalidPhoneNumber:
            return None
        monthly = session.mode == "subscription"
        tier = session.metadata.get("tier") or "custom"
        cents = session.amount_total if session.amount_total is not None else FIXED_TIERS.get(tier, 0) * 100
        return Payment(
            id=f"pay_{self._ids()}", phone=phone, email=session.email or "", tier=tier, amount_cents=cents,
            payment_type=PaymentType.MONTHLY if monthly else PaymentType.ONE_TIME, created_at=now, updated_at=now,
            checkout_session_id=session.id, customer_id=session.customer_id,
        )


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription: under parent.subscription_details since API 2025-03-31, top level before."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {} if isinstance(parent, dict) else {}
    found = details.get("subscription") if isinstance(details, dict) else None
    found = found or invoice.get("subscription")
    if isinstance(found, dict):
        found = found.get("id")
    return found if isinstance(found, str) else None


def _payment_audit(action: str, payment: Payment, now: datetime) -> AuditEntry:
    return AuditEntry(action, now, payment.phone.e164, payment.id,
                      {"status": payment.status.value, "tier": payment.tier, "amount_cents": payment.amount_cents,
                       "subscription_id": payment.subscription_id, "session_id": payment.checkout_session_id})
