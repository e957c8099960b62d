from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import attrs

from weft.application.ports import PaymentEvent
from weft.domain.alerts import Alert, AlertKind
from weft.domain.campaign import Campaign
from weft.domain.journey import AuditEntry, Journey
from weft.domain.messages import (
    DeliveryReceipt,
    DeliveryState,
    DeliveryStatus,
    InboundSms,
    Lane,
    OutboundSms,
    ProviderSentSms,
)
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Subscriber

T = TypeVar("T")


@attrs.frozen
class Lease:
    """Work claimed by one worker process until `until`; the process renews it while it lives, so a dead
    worker's work becomes claimable again soon after."""

    owner: str
    until: datetime


@attrs.frozen
class OutboxEntry:
    """An outbox row as the send pipeline and the admin see it."""

    message: OutboundSms
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    provider_id: str | None = None
    error: str | None = None
    sent_at: datetime | None = None
    first_attempt_at: datetime | None = None
    possible_duplicate: bool = False
    """Sent again after a crash without the provider being able to say whether the first send went out."""
    in_doubt: bool = False
    """Claimed by a worker that vanished before recording an outcome: it may have reached the provider."""
    delivery_state: DeliveryState | None = None
    """What the provider reported after accepting it (delivery receipts); None until a receipt arrives."""
    delivery_error_code: str | None = None
    delivery_at: datetime | None = None
    """When the provider says the reported state was reached (or when its receipt arrived)."""

    @property
    def failed(self) -> bool:
        """It never reached the phone: refused or given up on, or reported failed by the carrier (the SQL store's
        ix_outbox_failed holds exactly these)."""
        return self.status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED) or bool(
            self.delivery_state and self.delivery_state.failed)


@attrs.frozen
class Cancellation:
    """A provider subscription to cancel, queued with the change that asked for it and retried until done."""

    subscription_id: str
    phone: PhoneNumber
    requested_at: datetime
    status: str = "pending"  # pending | done | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None


@attrs.frozen
class ReceivedEvent:
    """A verified payment event, stored when it arrived and processed from the queue until it is applied."""

    event: PaymentEvent
    received_at: datetime
    status: str = "pending"  # pending | processed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None
    """The last attempt's fault, kept until the event is processed."""
    processed_at: datetime | None = None


@attrs.frozen
class CampaignCounts:
    """Where a campaign's messages stand; `sent_last_minute` gives its current rate."""

    by_status: dict[DeliveryStatus, int]
    possible_duplicates: int = 0
    sent_last_minute: int = 0

    def __getitem__(self, status: DeliveryStatus) -> int:
        return self.by_status.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


class MirrorKind(enum.Enum):
    NUMBER = "number"
    PAYMENT = "payment"


@attrs.frozen
class MirrorChange:
    """A record whose copy in the organisers' base is out of date; `version` counts the changes queued, so a
    change made while the copy is being pushed is pushed again."""

    kind: MirrorKind
    key: str
    """The phone (E.164) of a number, the id of a payment."""
    version: int
    attempts: int = 0
    first_attempt_at: datetime | None = None


@attrs.frozen
class MirrorBacklog:
    waiting: int
    oldest: datetime | None
    failing: int
    """Copies that failed at least once and wait to be tried again."""
    last_error: str | None = None
    """The latest failure among the waiting copies (gone once that copy is pushed)."""
    last_error_at: datetime | None = None


class Members(Protocol):
    def get(self, phone: PhoneNumber) -> Subscriber | None:
        """The subscriber with this number, or None; locked for update until the transaction ends."""
        ...

    def get_many(self, phones: Collection[PhoneNumber], for_update: bool = False) -> dict[str, Subscriber]:
        """The known subscribers among these numbers, by E.164; `for_update` locks them as `get` does."""
        ...

    def save(self, subscriber: Subscriber) -> None:
        """Insert or update the subscriber and append its new consent changes to the history."""
        ...

    def save_many(self, subscribers: Sequence[Subscriber]) -> None:
        """`save` for each, in as few statements as the store can."""
        ...

    def consent_version(self) -> int:
        """A number that grows with every consent change of any number (0 before the first)."""
        ...


class InboundMessages(Protocol):
    def record(self, message: InboundSms, at: datetime) -> bool:
        """Store the message once per provider id, waiting to be applied; False when it was already stored."""
        ...

    def pending(self, phones: Collection[PhoneNumber] | None = None, limit: int | None = None) -> list[InboundSms]:
        """Stored texts not yet applied (of these numbers, or of all), oldest first, each with its `received_at`."""
        ...

    def hold(self, phones: Sequence[PhoneNumber], wait: bool) -> list[PhoneNumber]:
        """Take each number's applier lock until the transaction ends, so one transaction at a time applies a
        number's texts, in order; without `wait`, the numbers another transaction holds are left out. Returns
        the numbers held."""
        ...

    def mark_processed(self, provider_ids: Sequence[str], at: datetime, error: str | None = None) -> None:
        """These texts have been applied, or set aside with the error that stopped them: `pending` no longer
        returns them."""
        ...


class Payments(Protocol):
    def get(self, payment_id: str) -> Payment | None:
        ...

    def by_session(self, session_id: str) -> Payment | None:
        ...

    def by_subscription(self, subscription_id: str) -> Payment | None:
        ...

    def save(self, payment: Payment) -> None:
        """Insert or update the payment."""
        ...

    def live_subscriptions(self, phone: PhoneNumber) -> list[str]:
        """Provider subscription ids of this number's payments that may still bill (active, past due, processing)."""
        ...

    def of_member(self, phone: PhoneNumber, email: str | None = None) -> list[Payment]:
        """Every payment and sign-up of this number (and, when given, of this email), oldest first."""
        ...


class ProviderEvents(Protocol):
    def record(self, event_id: str, at: datetime) -> bool:
        """Remember a provider event id, or another fact that may happen once (`welcomed:<number>`); False when it
        was recorded before. A second transaction recording the same key waits for the first to end."""
        ...


class ReceivedEvents(Protocol):
    def receive(self, event: PaymentEvent, at: datetime) -> bool:
        """Store the event, due now; False (nothing written) when an event with its id was received before."""
        ...

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[ReceivedEvent]:
        """Pending events that are due, oldest first, claimed under the lease."""
        ...

    def save(self, received: ReceivedEvent) -> None:
        """Record the outcome (status, attempts, next attempt, error) and release the claim."""
        ...


class AuditLog(Protocol):
    def add(self, entry: AuditEntry) -> None:
        """Append to the audit log."""
        ...


class Journeys(Protocol):
    def get(self, journey_id: str) -> Journey | None:
        ...

    def save(self, journey: Journey) -> None:
        """Insert or update the journey's steps; its schedule and any claim on it are left as they are."""
        ...

    def schedule(self, journey_id: str, at: datetime | None) -> None:
        """Due to run at `at` (None: nothing to run); releases any claim on it."""
        ...

    def wake(self, journey_id: str, at: datetime) -> bool:
        """Due by `at` at the latest; False (nothing changed) while a worker holds it, which reschedules it
        from its stored state when done."""
        ...

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Journey]:
        """Due journeys, oldest first, claimed under the lease."""
        ...


class Cancellations(Protocol):
    def request(self, cancellation: Cancellation) -> None:
        """Queue a subscription cancellation (a repeat request for the same subscription is ignored)."""
        ...

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Cancellation]:
        """Pending cancellations that are due, oldest first, claimed under the lease."""
        ...

    def save(self, cancellation: Cancellation) -> None:
        """Record the outcome (status, attempts, next attempt, error) and release the claim."""
        ...


class Outbox(Protocol):
    def enqueue_once(self, message: OutboundSms, due: datetime, at: datetime) -> bool:
        """Queue the message under its key, due at `due`; False (and nothing written) when the key exists."""
        ...

    def enqueue_many(self, messages: Sequence[tuple[OutboundSms, datetime]], at: datetime) -> int:
        """enqueue_once for each (message, due); returns how many were new."""
        ...

    def get(self, key: str) -> OutboxEntry | None:
        ...

    def claim(self, lane: Lane, lease: Lease, now: datetime, limit: int) -> list[OutboxEntry]:
        """Pending messages of the lane that are due, oldest first, claimed under the lease; `in_doubt` marks
        those whose previous claim lapsed without an outcome."""
        ...

    def record(self, entries: Sequence[OutboxEntry]) -> None:
        """Write each entry's delivery fields and release its claim."""
        ...

    def requeue(self, key: str, now: datetime) -> OutboxEntry | None:
        """A failed or expired message is due again now with a fresh lifetime; None when there is nothing to redo."""
        ...

    def count_claimed(self, lane: Lane, owner: str) -> int:
        """Messages of the lane the owner holds claimed now (taken, outcome not yet recorded)."""
        ...

    def count_sent(self, day: str) -> int:
        """Messages recorded as sent on this day (YYYY-MM-DD in the service's time zone)."""
        ...

    def add_sent(self, day: str, count: int) -> None:
        ...

    def campaign_counts(self, campaign_id: str, now: datetime) -> CampaignCounts:
        ...

    def campaign_pending(self, campaign_id: str) -> bool:
        """Whether any message of the campaign is still pending (cheaper than counting them all)."""
        ...

    def apply_receipts(self, receipts: Sequence[DeliveryReceipt], at: datetime) -> int:
        """Record each receipt against its message (by provider id, else by our key in `reference`): every receipt
        is kept in the message's delivery history, and its state replaces the message's delivery state only when
        it ranks higher (DeliveryState.rank). Receipts for no known message are ignored. Returns how many matched."""
        ...

    def record_provider_sent(self, messages: Sequence[ProviderSentSms], at: datetime) -> int:
        """Record texts the provider's automations sent, each once, in their numbers' message history as sent
        (kind SENT_BY_PROVIDER, never sent by us); texts Weft sent itself (its provider id or outbox key known)
        are left out. Returns how many were new."""
        ...


class MirrorQueue(Protocol):
    def changed(self, kind: MirrorKind, keys: Sequence[str], at: datetime) -> None:
        """Queue a copy of each record; a record already queued keeps one entry, its version counting the change."""
        ...

    def changed_all(self, at: datetime) -> int:
        """Queue a copy of every number and payment (a full reconcile); returns how many were queued."""
        ...

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[MirrorChange]:
        """Claim up to `limit` due copies, oldest change first."""
        ...

    def done(self, changes: Sequence[MirrorChange], at: datetime) -> None:
        """Forget each copy pushed at its claimed version; one changed since then is due again at `at`."""
        ...

    def retry(self, changes: Sequence[MirrorChange], due: datetime, at: datetime, error: str) -> None:
        """Release the claims and try each again at `due`, counting the attempt and keeping the error."""
        ...

    def backlog(self, now: datetime) -> MirrorBacklog:
        """How many copies wait, the oldest change among them, and how many have failed before."""
        ...


class Cursors(Protocol):
    def get(self, name: str) -> str | None:
        """Where a named sync stopped last time, or None before its first run."""
        ...

    def set(self, name: str, cursor: str, at: datetime) -> None:
        ...


class Campaigns(Protocol):
    def get(self, campaign_id: str) -> Campaign | None:
        """The campaign, locked for update until the transaction ends."""
        ...

    def save(self, campaign: Campaign) -> None:
        """Insert or update the campaign; its schedule and any claim on it are left as they are."""
        ...

    def schedule(self, campaign_id: str, at: datetime | None) -> None:
        """Its work (selecting, then watching the sends finish) is due at `at`; releases any claim on it."""
        ...

    def wake(self, campaign_id: str, at: datetime) -> bool:
        """Due by `at` at the latest; False while a worker holds it (that worker reschedules it when done)."""
        ...

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Campaign]:
        ...


class Leases(Protocol):
    def renew(self, owner: str, until: datetime) -> None:
        """Extend every claim and named lease the owner holds."""
        ...

    def take(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Hold the named lease until `until` unless another owner holds it unexpired; True when held."""
        ...

    def release(self, name: str, owner: str) -> None:
        """Let go of the named lease if the owner holds it (else nothing changes)."""
        ...


class Alerts(Protocol):
    def get(self, kind: AlertKind) -> Alert:
        """The alert of this kind (inactive when never saved), locked for update until the transaction ends."""
        ...

    def save(self, alert: Alert) -> None:
        """Insert or update the alert with its watched progress."""
        ...


class Transaction(Protocol):
    """One database transaction with a narrow repository per aggregate; it commits only when the work returns."""

    @property
    def members(self) -> Members: ...

    @property
    def inbound(self) -> InboundMessages: ...

    @property
    def payments(self) -> Payments: ...

    @property
    def events(self) -> ProviderEvents: ...

    @property
    def received_events(self) -> ReceivedEvents: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def journeys(self) -> Journeys: ...

    @property
    def cancellations(self) -> Cancellations: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def campaigns(self) -> Campaigns: ...

    @property
    def leases(self) -> Leases: ...

    @property
    def cursors(self) -> Cursors: ...

    @property
    def mirror(self) -> MirrorQueue: ...

    @property
    def alerts(self) -> Alerts: ...


class StoreError(Exception):
    """The store failed for reasons outside the unit of work (connection lost, deadlock, a failed commit): nothing
    of it was committed, and the same work may succeed when tried again."""


class Store(Protocol):
    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run work in one transaction and commit durably before returning its result."""
        ...
