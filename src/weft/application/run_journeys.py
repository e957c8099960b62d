from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from weft.application.journey_steps import apply_sms_entry, audit_step
from weft.application.ports import Clock, EmailSender
from weft.application.replies import Replies
from weft.application.sign_up_outcome import SignUpOutcome, sign_up_outcome
from weft.application.unit_of_work import Lease, Store, Transaction
from weft.application.welcome_email import thank_you_email, welcome_email
from weft.domain.errors import JourneyBusy, UnknownJourney
from weft.domain.journey import AuditEntry, Journey, Step
from weft.domain.membership import Greeting, Tier, dollars
from weft.domain.messages import MessageKind, OutboundEmail, OutboundSms, SendResult
from weft.domain.payment import Payment
from weft.domain.subscriber import Consent, Subscriber

log = logging.getLogger(__name__)


@attrs.frozen
class JourneyPolicy:
    email_attempts: int = 3
    email_delays: tuple[float, ...] = (0.5, 2.0)
    """Immediate retries of the welcome email; what still fails is recorded and run again later."""
    sms_wait_seconds: float = 120.0
    """The welcome email waits this long for the welcome text's outcome, so it can say when the text failed."""
    rerun_seconds: float = 300.0
    """A journey whose email failed transiently runs that step again after this long..."""
    rerun_window_seconds: float = 24 * 3600.0
    """...until this long after it started; then only an admin retry runs it again."""


@attrs.frozen
class JourneyRun:
    journey_id: str


def welcome_key(payment_id: str) -> str:
    """The outbox key of a purchase's welcome (or confirmation request) text: one per payment, ever."""
    return f"welcome:{payment_id}"


class RunJourneys:
    """Run the remaining steps of a due journey: queue the welcome text, send the welcome email once the text's
    outcome is known (or has been waited for long enough), then grant access."""

    name = "journeys"

    def __init__(self, email: EmailSender, store: Store, clock: Clock, replies: Replies, policy: JourneyPolicy,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self._email, self._store, self._clock = email, store, clock
        self._replies, self._policy, self._on_queued = replies, policy, on_queued

    def batch_size(self) -> int:
        return 1  # one at a time: a claim covers only its own run, never a queue waiting behind it

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[tuple[Journey, Payment]]:
        claimed = []
        for journey in tx.journeys.claim(lease, now, limit):
            payment = tx.payments.get(journey.payment_id)
            if payment is None:
                tx.journeys.schedule(journey.id, None)
            else:
                claimed.append((journey, payment))
        return claimed

    async def perform(self, item: tuple[Journey, Payment]) -> JourneyRun:
        journey, payment = item
        if not journey.succeeded(Step.SMS_SENT) and journey.waiting_since(Step.SMS_SENT) is None:
            journey = await self._queue_sms(journey, payment)
        if not self._email_due(journey):
            return JourneyRun(journey.id)  # the email (and access after it) wait for the text's outcome
        if not journey.succeeded(Step.EMAIL_SENT):
            journey = await self._send_email(journey, payment)
        if not journey.succeeded(Step.CUSTOMER_ACCESS_GRANTED):
            journey = await self._step(journey.id, payment, Step.CUSTOMER_ACCESS_GRANTED,
                                       lambda tx, j, at: j.done(Step.CUSTOMER_ACCESS_GRANTED, at,
                                                                f"{payment.tier} access granted"))
        log.info("journey %s: %s", journey.id, "completed" if journey.completed_at else "has steps to finish")
        return JourneyRun(journey.id)

    def failed(self, item: tuple[Journey, Payment], error: Exception) -> JourneyRun:
        return JourneyRun(item[0].id)

    def record(self, tx: Transaction, outcomes: list[JourneyRun], now: datetime) -> None:
        for run in outcomes:
            journey = tx.journeys.get(run.journey_id)  # read again: the outbox may have reported on its text
            if journey is not None:
                tx.journeys.schedule(journey.id, self._next_run(journey, now))

    def after_commit(self, outcomes: list[JourneyRun]) -> None:
        pass

    def _email_due(self, journey: Journey) -> bool:
        waiting = journey.waiting_since(Step.SMS_SENT)
        return waiting is None or self._clock.now() - waiting >= timedelta(seconds=self._policy.sms_wait_seconds)

    def _next_run(self, journey: Journey, now: datetime) -> datetime | None:
        waiting = journey.waiting_since(Step.SMS_SENT)
        if waiting is not None and Step.EMAIL_SENT not in journey.steps:
            return max(now, waiting + timedelta(seconds=self._policy.sms_wait_seconds))
        if Step.EMAIL_SENT not in journey.steps or Step.CUSTOMER_ACCESS_GRANTED not in journey.steps:
            return now  # the text's outcome came while this run was busy: the email is due
        within_window = now - journey.started_at < timedelta(seconds=self._policy.rerun_window_seconds)
        if journey.worth_retrying and within_window:
            return now + timedelta(seconds=self._policy.rerun_seconds)
        return None

    async def _queue_sms(self, journey: Journey, payment: Payment) -> Journey:
        def queue(tx: Transaction, j: Journey, now: datetime) -> None:
            message = self._welcome_sms(j, payment, tx.members.get(payment.phone))
            if message is None:
                j.done(Step.SMS_SENT, now, "skipped: no consent for texts")
            elif tx.outbox.enqueue_once(message, now, now):
                j.wait(Step.SMS_SENT, now, f"{message.kind.value} queued")
            else:
                existing = tx.outbox.get(message.id)
                if existing is not None:
                    apply_sms_entry(j, existing, now)

        journey = await self._step(journey.id, payment, Step.SMS_SENT, queue)
        self._on_queued()
        return journey

    def _welcome_sms(self, journey: Journey, payment: Payment, subscriber: Subscriber | None) -> OutboundSms | None:
        if subscriber is None:
            return None
        pending = subscriber.consent is Consent.PENDING
        if pending:
            kind, text = MessageKind.CONFIRMATION_REQUEST, self._replies.text("confirmation_request")
        elif journey.greeting is Greeting.WELCOME:
            kind, text = MessageKind.WELCOME, self._replies.text("welcome")
        else:
            kind, text = MessageKind.THANK_YOU, self._thanks(journey.greeting, payment, subscriber)
        if not subscriber.may_receive(kind):
            return None
        return OutboundSms(id=welcome_key(payment.id), to=payment.phone, text=text, kind=kind, journey_id=journey.id)

    def _thanks(self, greeting: Greeting, payment: Payment, subscriber: Subscriber | None, email: bool = False) -> str:
        """The thank-you (text or email) for a later gift, plan or sign-up, naming the tier the member is on now."""
        r = self._replies
        texts = {Greeting.THANKS_FOR_GIFT: (r.thanks_gift, r.thanks_gift_email),
                 Greeting.THANKS_FOR_PLAN: (r.thanks_plan, r.thanks_plan_email)}
        template = texts.get(greeting, (r.already_member, r.already_member_email))[email]
        tier = subscriber.tier if subscriber is not None else Tier.of(payment)
        return self._replies.render(template, payment.phone, tier=tier.label, amount=dollars(payment.amount_cents))

    async def _send_email(self, journey: Journey, payment: Payment) -> Journey:
        sms_failed = not journey.succeeded(Step.SMS_SENT)
        welcome = journey.greeting is Greeting.WELCOME
        outcome = await self._store.transaction(lambda tx: sign_up_outcome(tx.members.get(payment.phone)))
        result = await self._attempt_email(payment, outcome, sms_failed, journey.greeting)
        sent = _email_detail(outcome, sms_failed) if welcome else "thank-you email sent"
        detail = sent if result.accepted else str(result.error)

        def record(tx: Transaction, j: Journey, at: datetime) -> None:
            if result.accepted:
                j.done(Step.EMAIL_SENT, at, detail)
            else:
                j.fail(Step.EMAIL_SENT, at, detail, result.transient)

        return await self._step(journey.id, payment, Step.EMAIL_SENT, record)

    async def _attempt_email(self, payment: Payment, outcome: SignUpOutcome, sms_failed: bool,
                             greeting: Greeting) -> SendResult:
        if greeting is Greeting.WELCOME:
            email = welcome_email(payment, outcome, sms_failed, self._replies)
        else:
            email = await self._thank_you(payment, greeting)
        for attempt in range(1, self._policy.email_attempts + 1):
            result = await self._email.send(email)
            if result.accepted or not result.transient or attempt == self._policy.email_attempts:
                return result
            await asyncio.sleep(self._policy.email_delays[min(attempt - 1, len(self._policy.email_delays) - 1)])
        raise AssertionError("unreachable: the last attempt returns")

    async def _thank_you(self, payment: Payment, greeting: Greeting) -> OutboundEmail:
        subscriber = await self._store.transaction(lambda tx: tx.members.get(payment.phone))
        subject = self._replies.render(self._replies.thanks_subject, payment.phone)
        return thank_you_email(payment, subject, self._thanks(greeting, payment, subscriber, email=True))

    async def _step(self, journey_id: str, payment: Payment, step: Step,
                    change: Callable[[Transaction, Journey, datetime], None]) -> Journey:
        """Apply one step's result to the journey as stored now (the outbox may have changed it), with its audit."""
        now = self._clock.now()

        def save(tx: Transaction) -> Journey:
            journey = tx.journeys.get(journey_id)
            if journey is None:
                raise UnknownJourney(f"no journey {journey_id}")
            change(tx, journey, now)
            tx.journeys.save(journey)
            if step in journey.steps:
                tx.audit.add(audit_step(journey, payment.phone.e164, step))
            return journey

        return await self._store.transaction(save)


def _email_detail(outcome: SignUpOutcome, sms_failed: bool) -> str:
    note = " with the SMS-failed note" if sms_failed else ""
    if outcome is SignUpOutcome.CONFIRM:
        return "email sent asking the member to reply YES" + note
    if outcome is SignUpOutcome.OPTED_OUT:
        return "email sent saying the number opted out of texts"
    return "welcome email sent" + note


@attrs.frozen
class JourneyRetry:
    journey: Journey
    steps: list[str]
    """The failed steps queued to run again."""


class RetryJourney:
    """Queue a journey's failed steps to run again (the steps that succeeded are not repeated); refused while a
    worker is running the journey, so no step can run twice at once."""

    def __init__(self, store: Store, clock: Clock, on_queued: Callable[[], None] = lambda: None) -> None:
        self._store, self._clock, self._on_queued = store, clock, on_queued

    async def __call__(self, journey_id: str) -> JourneyRetry:
        now = self._clock.now()
        retry = await self._store.transaction(lambda tx: _queue_retry(tx, journey_id, now))
        self._on_queued()
        return retry


def _queue_retry(tx: Transaction, journey_id: str, now: datetime) -> JourneyRetry:
    journey = tx.journeys.get(journey_id)
    if journey is None:
        raise UnknownJourney(f"no journey {journey_id}")
    steps = [s.value for s in journey.failed_steps]
    if steps and not tx.journeys.wake(journey.id, now):
        raise JourneyBusy(f"journey {journey_id} is running now; try again in a moment")
    if Step.SMS_SENT in journey.failed_steps:
        requeued = tx.outbox.requeue(welcome_key(journey.payment_id), now)
        if requeued is not None:
            journey.wait(Step.SMS_SENT, now, f"{requeued.message.kind.value} queued again")
            tx.journeys.save(journey)
    tx.audit.add(AuditEntry("journey.retry_requested", now, None, journey.payment_id,
                            {"journey_id": journey.id, "steps": steps}))
    return JourneyRetry(journey, steps)
