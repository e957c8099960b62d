from __future__ import annotations

import asyncio
import copy
import itertools
import math
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs

from weft.application.delivery_stats import OUTCOMES, Outcome, email_outcome, sms_outcome
from weft.application.mirror import PUSHED_CURSOR
from weft.application.paging import Page, Position, in_memory_page
from weft.application.ports import (
    BaseNumberRow,
    BasePaymentRow,
    CheckoutRequest,
    CheckoutSession,
    CustomerRecord,
    PaymentEvent,
    SessionState,
    SubscriptionState,
)
from weft.application.unit_of_work import (
    CampaignCounts,
    Cancellation,
    Lease,
    MirrorBacklog,
    MirrorChange,
    MirrorKind,
    OutboxEntry,
    ReceivedEvent,
    Transaction,
)
from weft.application.views import (
    AuditRecord,
    CampaignSummary,
    CareCandidate,
    InboundRecord,
    MemberQuery,
    MirrorStatus,
    SubscriberDetail,
    audit_position,
    campaign_position,
    event_position,
    journey_position,
    member_position,
    outbox_position,
    payment_position,
)
from weft.domain.alerts import Alert, AlertKind
from weft.domain.campaign import Campaign
from weft.domain.errors import PaymentProviderError, PaymentProviderThrottled, PaymentProviderUnavailable
from weft.domain.journey import AuditEntry, Journey, Step
from weft.domain.messages import (
    DeliveryReceipt,
    DeliveryStatus,
    InboundSms,
    Lane,
    Lookup,
    LookupResult,
    MessageKind,
    OutboundEmail,
    OutboundSms,
    ProviderSentSms,
    SendResult,
)
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import ConsentChange, Subscriber

T = TypeVar("T")
X = TypeVar("X")


class FixedClock:
    def __init__(self, at: datetime = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return self.at.timestamp()

    async def sleep(self, seconds: float) -> None:
        """Time passes only when a test says so, or when a paced sender waits: then the clock runs on to the end
        of the wait (several waiters that started together end together)."""
        target = self.at + timedelta(microseconds=max(1, math.ceil(seconds * 1e6)))
        await asyncio.sleep(0)
        self.at = max(self.at, target)


class SequentialIds:
    def __init__(self, prefix: str = "msg") -> None:
        self._counter = itertools.count(1)
        self._prefix = prefix

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class FakeSmsSender:
    """Records what it sends; `script` holds results to return, in order, before it starts accepting.
    `lookups` answers lookups by message id (UNKNOWN when absent), as a provider that can or cannot be asked."""

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []
        self.attempts: list[OutboundSms] = []
        self.script: list[SendResult] = []
        self.lookups: dict[str, LookupResult] = {}
        self.looked_up: list[str] = []

    def fail_next(self, *results: SendResult) -> None:
        self.script.extend(results)

    async def send(self, message: OutboundSms) -> SendResult:
        self.attempts.append(message)
        if self.script:
            return self.script.pop(0)
        self.sent.append(message)
        return SendResult(accepted=True, provider_id=f"fake-{len(self.sent)}")

    async def lookup(self, message: OutboundSms) -> LookupResult:
        self.looked_up.append(message.id)
        return self.lookups.get(message.id, LookupResult(Lookup.UNKNOWN, error="the fake was not told"))


class FakeEmailSender:
    """Records what it sends; `script` holds results to return, in order, before it starts accepting."""

    def __init__(self) -> None:
        self.sent: list[OutboundEmail] = []
        self.script: list[SendResult] = []

    def fail_next(self, *results: SendResult) -> None:
        self.script.extend(results)

    async def send(self, email: OutboundEmail) -> SendResult:
        if self.script:
            return self.script.pop(0)
        self.sent.append(email)
        return SendResult(accepted=True, provider_id=f"email-{len(self.sent)}")


class FakeOrganiserBase:
    """The organisers' base in memory: rows keyed as Airtable matches them; `failures` are raised in turn."""

    def __init__(self) -> None:
        self.numbers: dict[str, Subscriber] = {}
        self.payments: dict[str, Payment] = {}
        self.writes: list[list[str]] = []
        self.failures: list[Exception] = []
        self.number_rows: list[BaseNumberRow] = []
        self.payment_rows: list[BasePaymentRow] = []

    async def upsert_numbers(self, subscribers: Sequence[Subscriber]) -> None:
        self._write([s.phone.e164 for s in subscribers])
        self.numbers.update({s.phone.e164: copy.deepcopy(s) for s in subscribers})

    async def upsert_payments(self, payments: Sequence[Payment]) -> None:
        self._write([p.checkout_session_id or p.id for p in payments])
        self.payments.update({p.checkout_session_id or p.id: copy.deepcopy(p) for p in payments})

    async def read_numbers(self) -> list[BaseNumberRow]:
        return list(self.number_rows)

    async def read_payments(self) -> list[BasePaymentRow]:
        return list(self.payment_rows)

    async def check(self) -> list[str]:
        return []

    def _write(self, keys: list[str]) -> None:
        if len(keys) > 10:
            raise AssertionError("Airtable takes at most 10 records a request")
        if self.failures:
            raise self.failures.pop(0)
        self.writes.append(keys)


class FakePaymentGateway:
    """A provider that keeps customers, sessions and subscriptions in memory; `unavailable` makes it fail,
    `throttled` (seconds) makes it answer 429 once per call until cleared; `calls` counts requests it answered."""

    def __init__(self) -> None:
        self.customers: dict[str, CustomerRecord] = {}
        self.sessions: dict[str, SessionState] = {}
        self.requests: dict[str, CheckoutRequest] = {}
        self.requests_made: list[CheckoutRequest] = []
        self.subscriptions: dict[str, SubscriptionState] = {}
        self.cancelled: list[str] = []
        self.portals: list[tuple[str, str]] = []
        self.unavailable = False
        self.throttled: float | None = None
        self.calls = 0
        self._n = itertools.count(1)

    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        self._check()
        found = next((c for c in self.customers.values() if c.email == email or c.phone == phone), None)
        customer = found or CustomerRecord(f"cus_{next(self._n)}", email, phone)
        self.customers[customer.id] = customer
        return customer

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        self._check()
        session_id = next((s for s, r in self.requests.items() if r.idempotency_key == request.idempotency_key),
                          f"cs_{next(self._n)}")
        self.requests[session_id] = request
        self.requests_made.append(request)
        self.sessions.setdefault(session_id, SessionState(
            session_id, "open", "unpaid", "subscription" if request.monthly else "payment", request.customer_id,
            None, None, None, request.amount_cents, dict(request.metadata)))
        return CheckoutSession(session_id, f"https://checkout.test/{session_id}")

    def complete(self, session_id: str, phone: str | None = None, paid: bool = True) -> SessionState:
        session = self.sessions[session_id]
        subscription = None
        if session.mode == "subscription" and paid:
            subscription = f"sub_{next(self._n)}"
            self.subscriptions[subscription] = SubscriptionState(subscription, "active", session.customer_id, {})
        customer = self.customers.get(session.customer_id or "")
        session = attrs.evolve(session, status="complete", payment_status="paid" if paid else "unpaid",
                               subscription_id=subscription, phone=phone, email=customer.email if customer else None)
        self.sessions[session_id] = session
        return session

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        self._check()
        if session_id not in self.sessions:
            raise PaymentProviderError(f"no such session {session_id}")
        return self.sessions[session_id]

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        self._check()
        return self.subscriptions[subscription_id]

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        self._check()
        return self.customers[customer_id]

    async def cancel_subscription(self, subscription_id: str) -> None:
        self._check()
        self.cancelled.append(subscription_id)
        if subscription_id in self.subscriptions:
            self.subscriptions[subscription_id] = attrs.evolve(self.subscriptions[subscription_id],
                                                               status="canceled")

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        self._check()
        self.portals.append((customer_id, return_url))
        return f"https://billing.test/p/session_{len(self.portals)}"

    def _check(self) -> None:
        if self.throttled is not None:
            raise PaymentProviderThrottled("too many requests", self.throttled)
        if self.unavailable:
            raise PaymentProviderUnavailable("provider down")
        self.calls += 1


@attrs.define
class _State:
    inbound: dict[str, tuple[InboundSms, datetime]] = attrs.field(factory=dict)
    unapplied: set[str] = attrs.field(factory=set)
    inbound_errors: dict[str, str] = attrs.field(factory=dict)
    subscribers: dict[str, Subscriber] = attrs.field(factory=dict)
    history: list[tuple[str, ConsentChange]] = attrs.field(factory=list)
    outbox: dict[str, OutboxEntry] = attrs.field(factory=dict)
    events: set[str] = attrs.field(factory=set)
    payments: dict[str, Payment] = attrs.field(factory=dict)
    journeys: dict[str, tuple[Journey, datetime | None]] = attrs.field(factory=dict)
    audit: list[AuditEntry] = attrs.field(factory=list)
    cancellations: dict[str, Cancellation] = attrs.field(factory=dict)
    received_events: dict[str, ReceivedEvent] = attrs.field(factory=dict)
    campaigns: dict[str, tuple[Campaign, datetime | None]] = attrs.field(factory=dict)
    leases: dict[str, tuple[str, datetime]] = attrs.field(factory=dict)
    sent_per_day: dict[str, int] = attrs.field(factory=dict)
    claims: dict[tuple[str, str], str] = attrs.field(factory=dict)
    """(queue, key) -> the owner holding that row's claim; the due time holds the lease's end, as in SQL."""
    receipts: list[tuple[str, DeliveryReceipt, datetime]] = attrs.field(factory=list)
    """(outbox key, receipt, received at): every matched receipt, as the SQL store's delivery history."""
    cursors: dict[str, str] = attrs.field(factory=dict)
    mirror: dict[str, _MirrorEntry] = attrs.field(factory=dict)
    alerts: dict[AlertKind, Alert] = attrs.field(factory=dict)


@attrs.define
class _MirrorEntry:
    change: MirrorChange
    queued_at: datetime
    due: datetime | None
    error: str | None = None
    failed_at: datetime | None = None


class InMemoryStore:
    """The Store port in memory; a failing unit of work leaves no trace. With `mirror`, saved numbers and payments
    queue their copies for the organisers' base, as the SQL store does."""

    def __init__(self, mirror: bool = False) -> None:
        self.state = _State()
        self.commits = 0
        self.mirrored = mirror

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        draft = InMemoryTransaction(copy.deepcopy(self.state), self.mirrored)
        result = work(draft)
        self.state = draft.state
        self.commits += 1
        return result

    def actions(self) -> list[str]:
        return [e.action for e in self.state.audit]

    def payment(self) -> Payment:
        (payment,) = self.state.payments.values()
        return payment

    def journey(self) -> Journey:
        (entry,) = self.state.journeys.values()
        return entry[0]

    def subscriber(self, phone: str) -> Subscriber:
        return self.state.subscribers[phone]

    def messages(self, status: DeliveryStatus | None = None) -> list[OutboxEntry]:
        return [e for e in self.state.outbox.values() if status is None or e.status is status]


class InMemoryTransaction:
    def __init__(self, state: _State, mirrored: bool = False) -> None:
        self.state = state
        self.mirror = _Mirror(state)
        self.members = _Members(state, self.mirror if mirrored else None)
        self.inbound = _Inbound(state)
        self.payments = _Payments(state, self.mirror if mirrored else None)
        self.events = _Events(state)
        self.received_events = _ReceivedEvents(state)
        self.audit = _Audit(state)
        self.journeys = _Journeys(state)
        self.cancellations = _Cancellations(state)
        self.outbox = _Outbox(state)
        self.campaigns = _Campaigns(state)
        self.leases = _Leases(state)
        self.cursors = _Cursors(state)
        self.alerts = _Alerts(state)


class _Members:
    def __init__(self, state: _State, mirror: _Mirror | None = None) -> None:
        self.state = state
        self.mirror = mirror

    def get(self, phone: PhoneNumber) -> Subscriber | None:
        return copy.deepcopy(self.state.subscribers.get(phone.e164))

    def get_many(self, phones: Collection[PhoneNumber], for_update: bool = False) -> dict[str, Subscriber]:
        return {p.e164: copy.deepcopy(self.state.subscribers[p.e164]) for p in phones
                if p.e164 in self.state.subscribers}

    def consent_version(self) -> int:
        return len(self.state.history)

    def save(self, subscriber: Subscriber) -> None:
        self.save_many([subscriber])

    def _save(self, subscriber: Subscriber) -> None:
        self.state.history.extend((subscriber.phone.e164, change) for change in subscriber.changes)
        subscriber.changes.clear()
        self.state.subscribers[subscriber.phone.e164] = copy.deepcopy(subscriber)

    def save_many(self, subscribers: Sequence[Subscriber]) -> None:
        for subscriber in subscribers:
            self._save(subscriber)
        if self.mirror is not None and subscribers:
            self.mirror.changed(MirrorKind.NUMBER, [s.phone.e164 for s in subscribers],
                                max(s.updated_at for s in subscribers))


class _Inbound:
    def __init__(self, state: _State) -> None:
        self.state = state

    def record(self, message: InboundSms, at: datetime) -> bool:
        if message.provider_id in self.state.inbound:
            return False
        self.state.inbound[message.provider_id] = (message, at)
        self.state.unapplied.add(message.provider_id)
        return True

    def pending(self, phones: Collection[PhoneNumber] | None = None, limit: int | None = None) -> list[InboundSms]:
        found = sorted(
            ((at, key) for key in self.state.unapplied
             for message, at in [self.state.inbound[key]] if phones is None or message.sender in phones),
        )
        return [attrs.evolve(self.state.inbound[key][0], received_at=at) for at, key in found[:limit]]

    def hold(self, phones: Sequence[PhoneNumber], wait: bool) -> list[PhoneNumber]:
        return sorted(set(phones), key=lambda p: p.e164)  # one transaction at a time here

    def mark_processed(self, provider_ids: Sequence[str], at: datetime, error: str | None = None) -> None:
        self.state.unapplied.difference_update(provider_ids)
        self.state.inbound_errors.update((key, error) for key in provider_ids if error is not None)


class _Payments:
    def __init__(self, state: _State, mirror: _Mirror | None = None) -> None:
        self.state = state
        self.mirror = mirror

    def get(self, payment_id: str) -> Payment | None:
        return copy.deepcopy(self.state.payments.get(payment_id))

    def by_session(self, session_id: str) -> Payment | None:
        return self._first(lambda p: p.checkout_session_id == session_id)

    def by_subscription(self, subscription_id: str) -> Payment | None:
        return self._first(lambda p: p.subscription_id == subscription_id)

    def save(self, payment: Payment) -> None:
        self.state.payments[payment.id] = copy.deepcopy(payment)
        if self.mirror is not None:
            self.mirror.changed(MirrorKind.PAYMENT, [payment.id], payment.updated_at)

    def live_subscriptions(self, phone: PhoneNumber) -> list[str]:
        live = {"active", "past_due", "processing"}
        return [p.subscription_id for p in self.state.payments.values()
                if p.phone == phone and p.subscription_id and p.status.value in live]

    def of_member(self, phone: PhoneNumber, email: str | None = None) -> list[Payment]:
        found = [p for p in self.state.payments.values()
                 if p.phone == phone or (email is not None and p.email == email)]
        return copy.deepcopy(sorted(found, key=lambda p: (p.created_at, p.id)))

    def _first(self, matches: Callable[[Payment], bool]) -> Payment | None:
        return copy.deepcopy(next((p for p in self.state.payments.values() if matches(p)), None))


class _Events:
    def __init__(self, state: _State) -> None:
        self.state = state

    def record(self, event_id: str, at: datetime) -> bool:
        if event_id in self.state.events:
            return False
        self.state.events.add(event_id)
        return True


class _Audit:
    def __init__(self, state: _State) -> None:
        self.state = state

    def add(self, entry: AuditEntry) -> None:
        self.state.audit.append(entry)


def _claim_keys(state: _State, queue: str, due: dict[str, datetime | None], lease: Lease, now: datetime,
                limit: int) -> list[tuple[str, bool]]:
    """The generic claim: due keys oldest first, claimed by the lease; with whether a lapsed claim was on each."""
    ready = sorted((at, key) for key, at in due.items() if at is not None and at <= now)[:limit]
    claimed = [(key, (queue, key) in state.claims) for _, key in ready]
    for key, _ in claimed:
        state.claims[(queue, key)] = lease.owner
    return claimed


def _release(state: _State, queue: str, key: str) -> None:
    state.claims.pop((queue, key), None)


class _Journeys:
    def __init__(self, state: _State) -> None:
        self.state = state

    def get(self, journey_id: str) -> Journey | None:
        found = self.state.journeys.get(journey_id)
        return None if found is None else copy.deepcopy(found[0])

    def save(self, journey: Journey) -> None:
        due = self.state.journeys.get(journey.id, (journey, None))[1]
        self.state.journeys[journey.id] = (copy.deepcopy(journey), due)

    def schedule(self, journey_id: str, at: datetime | None) -> None:
        self.state.journeys[journey_id] = (self.state.journeys[journey_id][0], at)
        _release(self.state, "journeys", journey_id)

    def wake(self, journey_id: str, at: datetime) -> bool:
        if journey_id not in self.state.journeys or ("journeys", journey_id) in self.state.claims:
            return False
        journey, due = self.state.journeys[journey_id]
        self.state.journeys[journey_id] = (journey, at if due is None or due > at else due)
        return True

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Journey]:
        due = {key: at for key, (_, at) in self.state.journeys.items()}
        claimed = _claim_keys(self.state, "journeys", due, lease, now, limit)
        for key, _ in claimed:
            self.state.journeys[key] = (self.state.journeys[key][0], lease.until)
        return [copy.deepcopy(self.state.journeys[key][0]) for key, _ in claimed]


class _Cancellations:
    def __init__(self, state: _State) -> None:
        self.state = state

    def request(self, cancellation: Cancellation) -> None:
        self.state.cancellations.setdefault(cancellation.subscription_id, cancellation)

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Cancellation]:
        due = {k: c.next_attempt_at for k, c in self.state.cancellations.items() if c.status == "pending"}
        claimed = _claim_keys(self.state, "cancellations", due, lease, now, limit)
        found = [self.state.cancellations[key] for key, _ in claimed]
        for c in found:
            self.state.cancellations[c.subscription_id] = attrs.evolve(c, next_attempt_at=lease.until)
        return found

    def save(self, cancellation: Cancellation) -> None:
        if cancellation.subscription_id in self.state.cancellations:
            self.state.cancellations[cancellation.subscription_id] = cancellation
            _release(self.state, "cancellations", cancellation.subscription_id)


class _ReceivedEvents:
    def __init__(self, state: _State) -> None:
        self.state = state

    def receive(self, event: PaymentEvent, at: datetime) -> bool:
        if event.id in self.state.received_events:
            return False
        self.state.received_events[event.id] = ReceivedEvent(copy.deepcopy(event), received_at=at,
                                                             next_attempt_at=at)
        return True

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[ReceivedEvent]:
        due = {k: r.next_attempt_at for k, r in self.state.received_events.items() if r.status == "pending"}
        claimed = _claim_keys(self.state, "received_events", due, lease, now, limit)
        found = [self.state.received_events[key] for key, _ in claimed]
        for r in found:
            self.state.received_events[r.event.id] = attrs.evolve(r, next_attempt_at=lease.until)
        return found

    def save(self, received: ReceivedEvent) -> None:
        stored = self.state.received_events.get(received.event.id)
        if stored is not None:
            self.state.received_events[received.event.id] = attrs.evolve(received, event=stored.event)
            _release(self.state, "received_events", received.event.id)


class _Outbox:
    def __init__(self, state: _State) -> None:
        self.state = state

    def enqueue_once(self, message: OutboundSms, due: datetime, at: datetime) -> bool:
        if message.id in self.state.outbox:
            return False
        self.state.outbox[message.id] = OutboxEntry(
            message=message, status=DeliveryStatus.PENDING, attempts=0, created_at=at, next_attempt_at=due)
        return True

    def enqueue_many(self, messages: Sequence[tuple[OutboundSms, datetime]], at: datetime) -> int:
        return sum(self.enqueue_once(message, due, at) for message, due in messages)

    def get(self, key: str) -> OutboxEntry | None:
        return self.state.outbox.get(key)

    def claim(self, lane: Lane, lease: Lease, now: datetime, limit: int) -> list[OutboxEntry]:
        due = {key: e.next_attempt_at for key, e in self.state.outbox.items()
               if e.status is DeliveryStatus.PENDING and e.message.lane is lane}
        claimed = []
        for key, lapsed in _claim_keys(self.state, "outbox", due, lease, now, limit):
            entry = self.state.outbox[key]
            in_doubt = entry.in_doubt or lapsed
            self.state.outbox[key] = attrs.evolve(entry, next_attempt_at=lease.until, in_doubt=in_doubt)
            claimed.append(attrs.evolve(entry, in_doubt=in_doubt))
        return claimed

    def record(self, entries: Sequence[OutboxEntry]) -> None:
        """Only the delivery fields, as in SQL: the queued message and its creation time stay as they were."""
        for entry in entries:
            stored = self.state.outbox.get(entry.message.id)
            if stored is not None:
                self.state.outbox[entry.message.id] = attrs.evolve(
                    stored, status=entry.status, attempts=entry.attempts, next_attempt_at=entry.next_attempt_at,
                    provider_id=entry.provider_id, error=entry.error, sent_at=entry.sent_at,
                    first_attempt_at=entry.first_attempt_at, in_doubt=entry.in_doubt,
                    possible_duplicate=entry.possible_duplicate)
                _release(self.state, "outbox", entry.message.id)

    def requeue(self, key: str, now: datetime) -> OutboxEntry | None:
        entry = self.state.outbox.get(key)
        if entry is None or entry.status not in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED):
            return None
        entry = attrs.evolve(entry, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                             first_attempt_at=None, error=None, in_doubt=False)
        self.state.outbox[key] = entry
        _release(self.state, "outbox", key)
        return entry

    def count_claimed(self, lane: Lane, owner: str) -> int:
        return sum(1 for (queue, key), holder in self.state.claims.items()
                   if queue == "outbox" and holder == owner and self.state.outbox[key].message.lane is lane)

    def count_sent(self, day: str) -> int:
        return self.state.sent_per_day.get(day, 0)

    def add_sent(self, day: str, count: int) -> None:
        self.state.sent_per_day[day] = self.state.sent_per_day.get(day, 0) + count

    def campaign_counts(self, campaign_id: str, now: datetime) -> CampaignCounts:
        return campaign_counts(self.state, campaign_id, now)

    def campaign_pending(self, campaign_id: str) -> bool:
        return any(e.message.campaign_id == campaign_id and e.status is DeliveryStatus.PENDING
                   for e in self.state.outbox.values())

    def apply_receipts(self, receipts: Sequence[DeliveryReceipt], at: datetime) -> int:
        matched = 0
        for receipt in receipts:
            key = next((k for k, e in self.state.outbox.items() if e.provider_id == receipt.provider_id), None)
            if key is None and receipt.reference in self.state.outbox:
                key = receipt.reference
            if key is None:
                continue
            matched += 1
            entry = self.state.outbox[key]
            self.state.receipts.append((key, receipt, at))
            if entry.delivery_state is None or receipt.state.rank > entry.delivery_state.rank:
                self.state.outbox[key] = attrs.evolve(
                    entry, delivery_state=receipt.state, delivery_error_code=receipt.error_code,
                    delivery_at=receipt.at or at, provider_id=entry.provider_id or receipt.provider_id)
        return matched

    def record_provider_sent(self, messages: Sequence[ProviderSentSms], at: datetime) -> int:
        ours = {e.provider_id for e in self.state.outbox.values() if e.provider_id} | set(self.state.outbox)
        added = 0
        for m in messages:
            if m.provider_id in ours or m.reference in ours:
                continue
            message = m.as_history()
            self.state.outbox[message.id] = OutboxEntry(
                message=message, status=DeliveryStatus.SENT, attempts=0, created_at=at,
                provider_id=m.provider_id, sent_at=m.sent_at or at)
            ours.add(m.provider_id)
            added += 1
        return added


class _Cursors:
    def __init__(self, state: _State) -> None:
        self.state = state

    def get(self, name: str) -> str | None:
        return self.state.cursors.get(name)

    def set(self, name: str, cursor: str, at: datetime) -> None:
        self.state.cursors[name] = cursor


class _Alerts:
    def __init__(self, state: _State) -> None:
        self.state = state

    def get(self, kind: AlertKind) -> Alert:
        return copy.deepcopy(self.state.alerts.get(kind, Alert(kind)))

    def save(self, alert: Alert) -> None:
        self.state.alerts[alert.kind] = copy.deepcopy(alert)


def campaign_counts(state: _State, campaign_id: str, now: datetime) -> CampaignCounts:
    entries = [e for e in state.outbox.values() if e.message.campaign_id == campaign_id]
    by_status: dict[DeliveryStatus, int] = {}
    for e in entries:
        by_status[e.status] = by_status.get(e.status, 0) + 1
    recent = sum(1 for e in entries if e.status is DeliveryStatus.SENT and e.sent_at is not None
                 and e.sent_at >= now - timedelta(minutes=1))
    return CampaignCounts(by_status, sum(e.possible_duplicate for e in entries), recent)


class _Campaigns:
    def __init__(self, state: _State) -> None:
        self.state = state

    def get(self, campaign_id: str) -> Campaign | None:
        found = self.state.campaigns.get(campaign_id)
        return None if found is None else copy.deepcopy(found[0])

    def save(self, campaign: Campaign) -> None:
        due = self.state.campaigns.get(campaign.id, (campaign, None))[1]
        self.state.campaigns[campaign.id] = (copy.deepcopy(campaign), due)

    def schedule(self, campaign_id: str, at: datetime | None) -> None:
        self.state.campaigns[campaign_id] = (self.state.campaigns[campaign_id][0], at)
        _release(self.state, "campaigns", campaign_id)

    def wake(self, campaign_id: str, at: datetime) -> bool:
        if campaign_id not in self.state.campaigns or ("campaigns", campaign_id) in self.state.claims:
            return False
        campaign, due = self.state.campaigns[campaign_id]
        self.state.campaigns[campaign_id] = (campaign, at if due is None or due > at else due)
        return True

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Campaign]:
        due = {key: at for key, (_, at) in self.state.campaigns.items()}
        claimed = _claim_keys(self.state, "campaigns", due, lease, now, limit)
        for key, _ in claimed:
            self.state.campaigns[key] = (self.state.campaigns[key][0], lease.until)
        return [copy.deepcopy(self.state.campaigns[key][0]) for key, _ in claimed]


class _Mirror:
    def __init__(self, state: _State) -> None:
        self.state = state

    def changed(self, kind: MirrorKind, keys: Sequence[str], at: datetime) -> None:
        for key in dict.fromkeys(keys):
            ident = f"{kind.value}:{key}"
            if (entry := self.state.mirror.get(ident)) is None:
                self.state.mirror[ident] = _MirrorEntry(MirrorChange(kind, key, 1), at, at)
            else:
                entry.change = attrs.evolve(entry.change, version=entry.change.version + 1)

    def changed_all(self, at: datetime) -> int:
        phones, payments = sorted(self.state.subscribers), sorted(self.state.payments)
        self.changed(MirrorKind.NUMBER, phones, at)
        self.changed(MirrorKind.PAYMENT, payments, at)
        return len(phones) + len(payments)

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[MirrorChange]:
        due = {ident: entry.due for ident, entry in self.state.mirror.items()}
        claimed = _claim_keys(self.state, "mirror", due, lease, now, limit)
        for ident, _ in claimed:
            self.state.mirror[ident].due = lease.until
        return [self.state.mirror[ident].change for ident, _ in claimed]

    def done(self, changes: Sequence[MirrorChange], at: datetime) -> None:
        for change in changes:
            ident = f"{change.kind.value}:{change.key}"
            _release(self.state, "mirror", ident)
            entry = self.state.mirror.get(ident)
            if entry is None:
                continue
            if entry.change.version == change.version:
                del self.state.mirror[ident]
            else:
                entry.change = attrs.evolve(entry.change, attempts=0, first_attempt_at=None)
                entry.due, entry.error, entry.failed_at = at, None, None

    def retry(self, changes: Sequence[MirrorChange], due: datetime, at: datetime, error: str) -> None:
        for change in changes:
            ident = f"{change.kind.value}:{change.key}"
            _release(self.state, "mirror", ident)
            if (entry := self.state.mirror.get(ident)) is not None:
                entry.change = attrs.evolve(entry.change, attempts=change.attempts + 1,
                                            first_attempt_at=change.first_attempt_at or at)
                entry.due, entry.error, entry.failed_at = due, error, at

    def backlog(self, now: datetime) -> MirrorBacklog:
        entries = list(self.state.mirror.values())
        failed = max((e for e in entries if e.failed_at is not None), key=lambda e: e.failed_at or now, default=None)
        return MirrorBacklog(len(entries), min((e.queued_at for e in entries), default=None),
                             sum(1 for e in entries if e.change.attempts > 0),
                             failed.error if failed else None, failed.failed_at if failed else None)


class _Leases:
    def __init__(self, state: _State) -> None:
        self.state = state

    def renew(self, owner: str, until: datetime) -> None:
        for (queue, key), holder in self.state.claims.items():
            if holder == owner:
                self._extend(queue, key, until)
        for name, (holder, _) in list(self.state.leases.items()):
            if holder == owner:
                self.state.leases[name] = (owner, until)

    def take(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        holder = self.state.leases.get(name)
        if holder is not None and holder[0] != owner and holder[1] >= now:
            return False
        self.state.leases[name] = (owner, until)
        return True

    def release(self, name: str, owner: str) -> None:
        if self.state.leases.get(name, ("", None))[0] == owner:
            del self.state.leases[name]

    def _extend(self, queue: str, key: str, until: datetime) -> None:
        s = self.state
        if queue == "outbox":
            s.outbox[key] = attrs.evolve(s.outbox[key], next_attempt_at=until)
        elif queue == "cancellations":
            s.cancellations[key] = attrs.evolve(s.cancellations[key], next_attempt_at=until)
        elif queue == "journeys":
            s.journeys[key] = (s.journeys[key][0], until)
        elif queue == "received_events":
            s.received_events[key] = attrs.evolve(s.received_events[key], next_attempt_at=until)
        elif queue == "mirror":
            s.mirror[key].due = until
        else:
            s.campaigns[key] = (s.campaigns[key][0], until)


def _matches(s: Subscriber, q: MemberQuery) -> bool:
    tier_ok = q.tier is None or (q.tier in ("free", "paid") and s.membership.value == q.tier) or s.paid_tier == q.tier
    return ((q.phone is None or s.phone == q.phone) and (q.email is None or s.email == q.email)
            and (q.consent is None or s.consent is q.consent) and tier_ok)


class InMemoryViews:
    """The Views port over an InMemoryStore's committed state."""

    def __init__(self, store: InMemoryStore, clock: FixedClock) -> None:
        self._store, self._clock = store, clock

    @property
    def _state(self) -> _State:
        return self._store.state

    async def subscribers(self, query: MemberQuery | None = None, after: Position | None = None,
                          limit: int = 200) -> Page[Subscriber]:
        q = query or MemberQuery()
        found = [s for s in self._state.subscribers.values() if _matches(s, q)]
        return in_memory_page(found, member_position, True, after, limit)

    async def subscriber_detail(self, phone: PhoneNumber) -> SubscriberDetail | None:
        subscriber = self._state.subscribers.get(phone.e164)
        if subscriber is None:
            return None
        return SubscriberDetail(
            subscriber=subscriber,
            consent_history=[c for p, c in self._state.history if p == phone.e164],
            inbound=[InboundRecord(m.provider_id, m.text, at, None if key in self._state.unapplied else at,
                                   self._state.inbound_errors.get(key))
                     for key, (m, at) in sorted(self._state.inbound.items(), key=lambda item: item[1][1])
                     if m.sender == phone],
            outbound=[e for e in self._state.outbox.values() if e.message.to == phone],
            payments=(payments := in_memory_page([p for p in self._state.payments.values() if p.phone == phone],
                                                 payment_position, True, None, 200).items),
            journeys=in_memory_page([j for j, _ in self._state.journeys.values()
                                     if j.payment_id in {p.id for p in payments}], journey_position, True, None,
                                    200).items,
        )

    async def outbox(self, failed_only: bool = False, after: Position | None = None,
                     limit: int = 200) -> Page[OutboxEntry]:
        entries = [e for e in self._state.outbox.values() if e.failed or not failed_only]
        return in_memory_page(entries, outbox_position, True, after, limit)

    async def delivery_outcomes(self, since: datetime) -> list[Outcome]:
        found = [Outcome("sms", e.created_at, outcome) for e in self._state.outbox.values()
                 if e.created_at >= since and e.message.kind is not MessageKind.SENT_BY_PROVIDER
                 and (outcome := sms_outcome(e.status, e.delivery_state)) is not None]
        found += [Outcome("email", journey.started_at, email_outcome(journey.steps.get(Step.EMAIL_SENT)))
                  for journey, _ in self._state.journeys.values() if journey.started_at >= since]
        return found

    async def payments(self, after: Position | None = None, limit: int = 200) -> Page[Payment]:
        return in_memory_page(self._state.payments.values(), payment_position, True, after, limit)

    async def payment_for_session(self, session_id: str) -> Payment | None:
        return next((p for p in self._state.payments.values() if p.checkout_session_id == session_id), None)

    async def journeys(self, failed_only: bool = False, after: Position | None = None,
                       limit: int = 200) -> Page[Journey]:
        found = [j for j, _ in self._state.journeys.values() if j.failed_steps or not failed_only]
        return in_memory_page(found, journey_position, True, after, limit)

    async def received_events(self, pending_only: bool = True, after: Position | None = None,
                              limit: int = 200) -> Page[ReceivedEvent]:
        found = [r for r in self._state.received_events.values() if r.status == "pending" or not pending_only]
        return in_memory_page(found, event_position, False, after, limit)

    async def audit_log(self, action: str | None, since: datetime | None, after: Position | None = None,
                        limit: int = 500) -> Page[AuditRecord]:
        found = [AuditRecord(number, e) for number, e in enumerate(self._state.audit, start=1)
                 if (action is None or e.action == action) and (since is None or e.at >= since)]
        return in_memory_page(found, audit_position, True, after, limit)

    async def consent_version(self) -> int:
        return len(self._state.history)

    async def consent_changes(self, after: int, limit: int) -> list[tuple[int, str]]:
        return [(version, phone) for version, (phone, _) in enumerate(self._state.history, start=1)
                if version > after][:limit]

    async def care_candidates(self, after: str, limit: int) -> list[CareCandidate]:
        phones = sorted(p for p in self._state.subscribers if p > after)[:limit]
        return [CareCandidate(p, self._state.subscribers[p].consent, frozenset(
            pay.status for pay in self._state.payments.values() if pay.phone.e164 == p)) for p in phones]

    async def queued_keys(self, keys: Collection[str]) -> set[str]:
        return {k for k in keys if k in self._state.outbox}

    async def campaigns(self, after: Position | None = None, limit: int = 24) -> Page[CampaignSummary]:
        found = [self._summary(c) for c, _ in self._state.campaigns.values()]
        return in_memory_page(found, campaign_position, True, after, limit)

    async def campaign(self, campaign_id: str) -> CampaignSummary | None:
        found = self._state.campaigns.get(campaign_id)
        return None if found is None else self._summary(found[0])

    async def mirror_status(self) -> MirrorStatus:
        pushed = self._state.cursors.get(PUSHED_CURSOR)
        return MirrorStatus(_Mirror(self._state).backlog(self._clock.now()),
                            datetime.fromisoformat(pushed) if pushed else None)

    async def campaign_sendable(self, campaign_id: str, now: datetime, retry_until: datetime) -> int:
        return sum(1 for e in self._state.outbox.values()
                   if e.message.campaign_id == campaign_id and e.status is DeliveryStatus.PENDING
                   and e.next_attempt_at is not None
                   and (e.next_attempt_at <= now or (e.attempts > 0 and e.next_attempt_at <= retry_until)))

    async def sms_outcome_counts(self, since: datetime) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in await self.delivery_outcomes(since):
            counts[outcome.outcome] += outcome.channel == "sms"
        return counts

    async def queue_depth(self) -> dict[Lane, int]:
        depth = dict.fromkeys(Lane, 0)
        for e in self._state.outbox.values():
            depth[e.message.lane] += e.status is DeliveryStatus.PENDING
        return depth

    async def active_alerts(self) -> list[Alert]:
        active = (a for a in self._state.alerts.values() if a.active)
        return sorted(active, key=lambda a: (a.since or self._clock.now(), a.kind.value))

    def _summary(self, campaign: Campaign) -> CampaignSummary:
        return CampaignSummary(campaign, campaign_counts(self._state, campaign.id, self._clock.now()))
