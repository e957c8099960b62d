from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import attrs

from weft.application.fulfilment import audit_step
from weft.application.ports import Clock, EmailSender, IdGenerator, OutboxEntry, SmsSender, Store, Transaction
from weft.application.replies import Replies
from weft.application.welcome_email import welcome_email
from weft.domain.errors import UnknownJourney
from weft.domain.journey import AuditEntry, Journey, Step
from weft.domain.messages import DeliveryStatus, MessageKind, OutboundSms, SendResult
from weft.domain.payment import Payment
from weft.domain.subscriber import Consent, Subscriber

log = logging.getLogger(__name__)


@attrs.frozen
class SendPolicy:
    """Immediate retries inside a journey step; what still fails is recorded and can be retried by an admin."""

    attempts: int = 3
    delays: tuple[float, ...] = (0.5, 2.0)
    lease_seconds: float = 300.0
    rerun_seconds: float = 300.0
    """A journey whose step failed transiently runs its failed steps again after this long..."""
    rerun_window_seconds: float = 24 * 3600.0
    """...until this long after it started; then only an admin retry runs it again."""


class RunJourneys:
    """Run the remaining steps of due journeys: welcome SMS, then welcome email, then access."""

    def __init__(self, store: Store, sms: SmsSender, email: EmailSender, clock: Clock, replies: Replies,
                 policy: SendPolicy, ids: IdGenerator = lambda: uuid.uuid4().hex) -> None:
        self._store, self._sms, self._email = store, sms, email
        self._clock, self._replies, self._policy, self._ids = clock, replies, policy, ids

    async def __call__(self) -> int:
        now = self._clock.now()
        lease = now + timedelta(seconds=self._policy.lease_seconds)
        claimed = await self._store.transaction(lambda tx: _claim(tx, now, lease))
        for journey, payment in claimed:
            await self._run(journey, payment)
        return len(claimed)

    async def _run(self, journey: Journey, payment: Payment) -> None:
        for step in (Step.SMS_SENT, Step.EMAIL_SENT, Step.CUSTOMER_ACCESS_GRANTED):
            if not journey.succeeded(step):
                await self._step(journey, payment, step)
        next_run = self._next_run(journey)
        await self._store.transaction(lambda tx: tx.save_journey(journey, next_run_at=next_run))
        log.info("journey %s: %s", journey.id, "completed" if journey.completed_at else "has failed steps")

    def _next_run(self, journey: Journey) -> datetime | None:
        now = self._clock.now()
        within_window = now - journey.started_at < timedelta(seconds=self._policy.rerun_window_seconds)
        if journey.worth_retrying and within_window:
            return now + timedelta(seconds=self._policy.rerun_seconds)
        return None

    async def _step(self, journey: Journey, payment: Payment, step: Step) -> None:
        if step is Step.SMS_SENT:
            await self._send_sms(journey, payment)
        elif step is Step.EMAIL_SENT:
            await self._send_email(journey, payment)
        else:
            await self._record(journey, payment, step, ok=True, detail=f"{payment.tier} access granted")

    async def _send_sms(self, journey: Journey, payment: Payment) -> None:
        subscriber = await self._store.transaction(lambda tx: tx.get_subscriber(payment.phone))
        message = self._welcome_sms(journey, payment, subscriber)
        if message is None:
            await self._record(journey, payment, Step.SMS_SENT, ok=True, detail="skipped: no consent for texts")
            return
        result, attempts = await self._attempt(lambda: self._sms.send(message))
        entry = _history(message, result, attempts, self._clock.now())
        await self._record(journey, payment, Step.SMS_SENT, ok=result.accepted,
                           detail=f"{message.kind.value} sent" if result.accepted else str(result.error),
                           transient=result.transient, extra=lambda tx: _store_history(tx, entry))

    def _welcome_sms(self, journey: Journey, payment: Payment, subscriber: Subscriber | None) -> OutboundSms | None:
        if subscriber is None:
            return None
        pending = subscriber.consent is Consent.PENDING
        kind = MessageKind.CONFIRMATION_REQUEST if pending else MessageKind.WELCOME
        if not subscriber.may_receive(kind):
            return None
        text = self._replies.confirmation_request if pending else self._replies.welcome
        return OutboundSms(id=self._ids(), to=payment.phone, text=text, kind=kind)

    async def _send_email(self, journey: Journey, payment: Payment) -> None:
        sms_failed = Step.SMS_SENT in journey.failed_steps
        email = welcome_email(payment, sms_failed)
        result, _ = await self._attempt(lambda: self._email.send(email))
        detail = ("welcome email sent" + (" with the SMS-failed note" if sms_failed else "")) if result.accepted \
            else str(result.error)
        await self._record(journey, payment, Step.EMAIL_SENT, ok=result.accepted, detail=detail,
                           transient=result.transient)

    async def _attempt(self, send: Callable[[], Awaitable[SendResult]]) -> tuple[SendResult, int]:
        for attempt in range(1, self._policy.attempts + 1):
            result = await send()
            if result.accepted or not result.transient or attempt == self._policy.attempts:
                return result, attempt
            await asyncio.sleep(self._policy.delays[min(attempt - 1, len(self._policy.delays) - 1)])
        raise AssertionError("unreachable: the last attempt returns")

    async def _record(self, journey: Journey, payment: Payment, step: Step, ok: bool, detail: str,
                      transient: bool = False, extra: Callable[[Transaction], None] | None = None) -> None:
        now = self._clock.now()
        if ok:
            journey.done(step, now, detail)
        else:
            journey.fail(step, now, detail, transient)

        def save(tx: Transaction) -> None:
            if extra is not None:
                extra(tx)
            tx.save_journey(journey, next_run_at=now + timedelta(seconds=self._policy.lease_seconds))
            tx.audit(audit_step(journey, payment, step))
        await self._store.transaction(save)


class RetryJourney:
    """Queue a journey's failed steps to run again (the steps that succeeded are not repeated)."""

    def __init__(self, store: Store, clock: Clock, on_queued: Callable[[], None] = lambda: None) -> None:
        self._store, self._clock, self._on_queued = store, clock, on_queued

    async def __call__(self, journey_id: str) -> Journey:
        now = self._clock.now()
        journey = await self._store.transaction(lambda tx: _queue_retry(tx, journey_id, now))
        self._on_queued()
        return journey


def _queue_retry(tx: Transaction, journey_id: str, now: datetime) -> Journey:
    journey = tx.get_journey(journey_id)
    if journey is None:
        raise UnknownJourney(f"no journey {journey_id}")
    steps = [s.value for s in journey.failed_steps]
    if steps:
        tx.save_journey(journey, next_run_at=now)
    tx.audit(AuditEntry("journey.retry_requested", now, None, journey.payment_id,
                        {"journey_id": journey.id, "steps": steps}))
    return journey


def _claim(tx: Transaction, now: datetime, lease: datetime) -> list[tuple[Journey, Payment]]:
    claimed = []
    # One at a time: a claimed journey's lease covers only its own run, never a queue waiting behind it.
    for journey in tx.due_journeys(now, 1):
        payment = tx.get_payment(journey.payment_id)
        tx.save_journey(journey, next_run_at=lease if payment else None)
        if payment is not None:
            claimed.append((journey, payment))
    return claimed


def _history(message: OutboundSms, result: SendResult, attempts: int, now: datetime) -> OutboxEntry:
    status = DeliveryStatus.SENT if result.accepted else DeliveryStatus.FAILED
    return OutboxEntry(message=message, status=status, attempts=attempts, created_at=now,
                       provider_id=result.provider_id, error=result.error, sent_at=now if result.accepted else None)


def _store_history(tx: Transaction, entry: OutboxEntry) -> None:
    """Journey texts are sent directly, and kept in the outbox table so the admin sees every message."""
    tx.enqueue(entry.message, entry.created_at)
    tx.update_delivery(entry.message.id, entry)
