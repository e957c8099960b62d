"""The Store port's contract, run against the in-memory fake the unit tests use and against the real SQL store on
SQLite and PostgreSQL: a unit test on the fake means what it says only while the fake passes these too.

Every test writes through one unit of work and checks the end state through a later one (or through the Views
port where the Transaction port cannot see it, as for the consent history and the audit log)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from tests.fakes import FixedClock, InMemoryStore, InMemoryViews
from tests.integration.conftest import _postgres_schema
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.sql.unit_of_work import SqlStore
from weft.adapters.sql.views import SqlViews
from weft.application.paging import Position
from weft.application.ports import PaymentEvent
from weft.application.unit_of_work import Cancellation, Lease, OutboxEntry, ReceivedEvent, Store, Transaction
from weft.application.views import MemberQuery, SubscriberDetail, Views
from weft.domain.campaign import Campaign, CampaignState
from weft.domain.journey import AuditEntry, Journey, Step, StepRecord
from weft.domain.membership import Greeting
from weft.domain.messages import (
    DeliveryReceipt,
    DeliveryState,
    DeliveryStatus,
    InboundSms,
    Lane,
    MessageKind,
    OutboundSms,
    ProviderSentSms,
)
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership, Subscriber
from weft.domain.tiers import PaymentType

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PHONE = PhoneNumber("+14155550123")
OTHER_PHONE = PhoneNumber("+14155550199")
A, B, C = "worker-a", "worker-b", "worker-c"


def later(seconds: int) -> datetime:
    return NOW + timedelta(seconds=seconds)


def lease(owner: str, seconds: int = 60) -> Lease:
    return Lease(owner, later(seconds))


# --- the three stores -----------------------------------------------------------------------------------------


@attrs.frozen
class Backend:
    store: Store
    views: Views


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        memory = InMemoryStore()
        yield Backend(memory, InMemoryViews(memory, FixedClock(NOW)))
        return
    if request.param == "sqlite":
        yield from _sql_backend(f"sqlite:///{tmp_path / 'weft.db'}")
        return
    base = os.environ.get("WEFT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("WEFT_TEST_POSTGRES_URL is not set")
    for url in _postgres_schema(base):
        yield from _sql_backend(url)


def _sql_backend(url: str) -> Iterator[Backend]:
    engine = create_engine(url)
    migrate(engine)
    store = SqlStore(engine)
    try:
        yield Backend(store, SqlViews(engine, FixedClock(NOW)))
    finally:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
def views(backend: Backend) -> Views:
    return backend.views


# --- records to store -----------------------------------------------------------------------------------------


def subscriber(phone: PhoneNumber = PHONE, **changes: Any) -> Subscriber:
    return attrs.evolve(Subscriber.first_contact(phone, NOW), **changes)


def payment(payment_id: str, status: PaymentStatus = PaymentStatus.PENDING, phone: PhoneNumber = PHONE,
            subscription_id: str | None = None, session_id: str | None = None) -> Payment:
    return Payment(id=payment_id, phone=phone, email="ada@example.org", tier="10", amount_cents=1000,
                   payment_type=PaymentType.MONTHLY, created_at=NOW, updated_at=NOW, status=status,
                   checkout_session_id=session_id, subscription_id=subscription_id)


def journey(journey_id: str) -> Journey:
    return Journey(id=journey_id, payment_id=f"pay-{journey_id}", started_at=NOW)


def campaign(campaign_id: str, month: str | None = None) -> Campaign:
    return Campaign(id=campaign_id, month=month or campaign_id[-7:], text="Our monthly care message",
                    created_at=NOW)


def cancellation(subscription_id: str, due: datetime | None = NOW, status: str = "pending",
                 phone: PhoneNumber = PHONE, requested_at: datetime = NOW) -> Cancellation:
    return Cancellation(subscription_id=subscription_id, phone=phone, requested_at=requested_at, status=status,
                        next_attempt_at=due)


def sms(key: str, kind: MessageKind = MessageKind.HELP, text: str = "Reply STOP to stop",
        campaign_id: str | None = None, phone: PhoneNumber = PHONE) -> OutboundSms:
    return OutboundSms(id=key, to=phone, text=text, kind=kind, campaign_id=campaign_id)


def care(key: str, campaign_id: str = "care-2026-11") -> OutboundSms:
    return sms(key, MessageKind.CARE, "Our monthly care message", campaign_id)


X = TypeVar("X")


def for_each(items: Iterable[X], write: Callable[[Transaction, X], None]) -> Callable[[Transaction], None]:
    """A unit of work that writes each item."""

    def work(tx: Transaction) -> None:
        for item in items:
            write(tx, item)

    return work


def keys(entries: list[OutboxEntry]) -> list[str]:
    return [e.message.id for e in entries]


async def enqueue(store: Store, *messages: OutboundSms, due: datetime = NOW) -> None:
    await store.transaction(lambda tx: [tx.outbox.enqueue_once(m, due, NOW) for m in messages])


async def claim_outbox(store: Store, owner: str, now: datetime, lane: Lane = Lane.PRIORITY, limit: int = 10,
                       seconds: int = 60) -> list[OutboxEntry]:
    return await store.transaction(lambda tx: tx.outbox.claim(lane, Lease(owner, now + timedelta(seconds=seconds)),
                                                              now, limit))


async def outbox_entry(store: Store, key: str) -> OutboxEntry:
    entry = await store.transaction(lambda tx: tx.outbox.get(key))
    assert entry is not None
    return entry


async def record(store: Store, *entries: OutboxEntry) -> None:
    await store.transaction(lambda tx: tx.outbox.record(entries))


async def with_status(store: Store, key: str, status: DeliveryStatus, **changes: Any) -> OutboxEntry:
    """Queue a message due now and record it in the given status (through a claim, as the pipeline does)."""
    await enqueue(store, sms(key))
    (claimed,) = [e for e in await claim_outbox(store, "setup", NOW, limit=100) if e.message.id == key]
    outcome = attrs.evolve(claimed, status=status, **changes)
    await record(store, outcome)
    return outcome


# --- the four queues, seen alike ------------------------------------------------------------------------------


@attrs.frozen
class Queue:
    """One queue of background work through the Transaction port: add an item due at a time, claim items."""

    name: str
    add: Callable[[Transaction, str, datetime | None], None]
    claim: Callable[[Transaction, Lease, datetime, int], list[str]]


def _add_journey(tx: Transaction, key: str, due: datetime | None) -> None:
    tx.journeys.save(journey(key))
    tx.journeys.schedule(key, due)


def _add_campaign(tx: Transaction, key: str, due: datetime | None) -> None:
    tx.campaigns.save(campaign(key))
    tx.campaigns.schedule(key, due)


def _add_received(tx: Transaction, key: str, due: datetime | None) -> None:
    assert due is not None, "a received event is due when it arrives"
    tx.received_events.receive(payment_event(key), due)


def _add_outbox(tx: Transaction, key: str, due: datetime | None) -> None:
    assert due is not None, "an outbox message is always due at some time"
    tx.outbox.enqueue_once(sms(key), due, NOW)


QUEUES = {
    "outbox": Queue("outbox", _add_outbox,
                    lambda tx, lease, now, limit: keys(tx.outbox.claim(Lane.PRIORITY, lease, now, limit))),
    "journeys": Queue("journeys", _add_journey,
                      lambda tx, lease, now, limit: [j.id for j in tx.journeys.claim(lease, now, limit)]),
    "cancellations": Queue(
        "cancellations", lambda tx, key, due: tx.cancellations.request(cancellation(key, due)),
        lambda tx, lease, now, limit: [c.subscription_id for c in tx.cancellations.claim(lease, now, limit)]),
    "campaigns": Queue("campaigns", _add_campaign,
                       lambda tx, lease, now, limit: [c.id for c in tx.campaigns.claim(lease, now, limit)]),
    "received_events": Queue(
        "received_events", _add_received,
        lambda tx, lease, now, limit: [r.event.id for r in tx.received_events.claim(lease, now, limit)]),
}


@pytest.fixture(params=list(QUEUES))
def queue(request: pytest.FixtureRequest) -> Queue:
    return QUEUES[request.param]


@attrs.frozen
class Scheduled:
    """A queue whose items are scheduled and woken apart from being saved: journeys and campaigns."""

    queue: Queue
    save: Callable[[Transaction, str], None]
    """Save the item with some progress, as a worker does."""
    schedule: Callable[[Transaction, str, datetime | None], None]
    wake: Callable[[Transaction, str, datetime], bool]


def _journey_progress(key: str) -> Journey:
    progressed = journey(key)
    progressed.done(Step.PAYMENT_PROCESSED, NOW)
    return progressed


SCHEDULED = {
    "journeys": Scheduled(QUEUES["journeys"], lambda tx, key: tx.journeys.save(_journey_progress(key)),
                          lambda tx, key, at: tx.journeys.schedule(key, at),
                          lambda tx, key, at: tx.journeys.wake(key, at)),
    "campaigns": Scheduled(QUEUES["campaigns"],
                           lambda tx, key: tx.campaigns.save(attrs.evolve(campaign(key), selected=5)),
                           lambda tx, key, at: tx.campaigns.schedule(key, at),
                           lambda tx, key, at: tx.campaigns.wake(key, at)),
}


@pytest.fixture(params=list(SCHEDULED))
def scheduled(request: pytest.FixtureRequest) -> Scheduled:
    return SCHEDULED[request.param]


async def add(store: Store, q: Queue, key: str, due: datetime | None) -> None:
    await store.transaction(lambda tx: q.add(tx, key, due))


async def claim(store: Store, q: Queue, owner: str, now: datetime, limit: int = 10,
                until: datetime | None = None) -> list[str]:
    held = Lease(owner, until or now + timedelta(seconds=60))
    return await store.transaction(lambda tx: q.claim(tx, held, now, limit))


async def schedule(store: Store, s: Scheduled, key: str, at: datetime | None) -> None:
    await store.transaction(lambda tx: s.schedule(tx, key, at))


async def wake(store: Store, s: Scheduled, key: str, at: datetime) -> bool:
    return await store.transaction(lambda tx: s.wake(tx, key, at))


# --- members --------------------------------------------------------------------------------------------------


async def test_getting_an_unknown_member_gives_none(store: Store) -> None:
    assert await store.transaction(lambda tx: tx.members.get(PHONE)) is None


async def test_a_saved_member_reads_back_with_every_field(store: Store) -> None:
    member = subscriber(
        created_at=later(-3600), updated_at=later(-60), consent=Consent.SUBSCRIBED, membership=Membership.PAID,
        paid_tier="25", email="ada@example.org", stripe_customer_id="cus_1", stripe_subscription_id="sub_1",
        consent_changed_at=later(-120), consent_message_id="in-7", last_message="JOIN", last_message_at=later(-30),
        paid_amount_cents=2500, paid_payment_type=PaymentType.MONTHLY, join_link_at=later(-30),
    )
    await store.transaction(lambda tx: tx.members.save(member))

    assert await store.transaction(lambda tx: tx.members.get(PHONE)) == member


async def test_saving_a_member_again_updates_every_field(store: Store) -> None:
    await store.transaction(lambda tx: tx.members.save(subscriber(
        consent=Consent.SUBSCRIBED, membership=Membership.PAID, paid_tier="25", email="ada@example.org",
        stripe_customer_id="cus_1", stripe_subscription_id="sub_1", last_message="JOIN", last_message_at=NOW)))
    changed = subscriber(updated_at=later(60), consent=Consent.OPTED_OUT, consent_changed_at=later(60),
                         consent_message_id="in-8", last_message="STOP", last_message_at=later(60))
    await store.transaction(lambda tx: tx.members.save(changed))

    assert await store.transaction(lambda tx: tx.members.get(PHONE)) == changed


async def test_get_many_returns_only_the_known_numbers_by_e164(store: Store) -> None:
    first, second = subscriber(PHONE), subscriber(OTHER_PHONE, email="bo@example.org")
    await store.transaction(for_each((first, second), lambda tx, s: tx.members.save(s)))

    unknown = PhoneNumber("+14155550100")
    found = await store.transaction(lambda tx: tx.members.get_many([PHONE, unknown, OTHER_PHONE]))

    assert found == {PHONE.e164: first, OTHER_PHONE.e164: second}
    assert await store.transaction(lambda tx: tx.members.get_many([])) == {}


def _history(detail: SubscriberDetail | None) -> list[tuple[Consent, datetime, str | None, str]]:
    assert detail is not None
    return [(h.consent, h.at, h.message_id, h.reason) for h in detail.consent_history]


async def test_consent_changes_are_appended_to_the_history_once(store: Store, views: Views) -> None:
    member = subscriber()
    member.opt_in(later(1), "in-1")

    def save_twice(tx: Transaction) -> None:
        tx.members.save(member)
        tx.members.save(member)

    await store.transaction(save_twice)
    await store.transaction(lambda tx: tx.members.save(member))

    def opt_out(tx: Transaction) -> None:
        loaded = tx.members.get(PHONE)
        assert loaded is not None and loaded.changes == []
        loaded.opt_out(later(2), "in-2")
        tx.members.save(loaded)

    await store.transaction(opt_out)

    detail = await views.subscriber_detail(PHONE)
    assert _history(detail) == [(Consent.SUBSCRIBED, later(1), "in-1", "keyword"),
                                (Consent.OPTED_OUT, later(2), "in-2", "keyword")]


async def test_consent_changes_are_read_by_version_past_a_given_one(store: Store, views: Views) -> None:
    assert (await views.consent_version(), await views.consent_changes(0, 10)) == (0, [])
    first, second = subscriber(PHONE), subscriber(OTHER_PHONE)
    first.opt_in(later(1), "in-1")
    second.opt_in(later(2), "in-2")
    await store.transaction(for_each((first, second), lambda tx, s: tx.members.save(s)))
    first.opt_out(later(3), "in-3")
    await store.transaction(lambda tx: tx.members.save(first))

    changes = await views.consent_changes(0, 10)
    assert [phone for _, phone in changes] == [PHONE.e164, OTHER_PHONE.e164, PHONE.e164]
    versions = [version for version, _ in changes]
    assert versions == sorted(set(versions)) and versions[-1] == await views.consent_version()
    assert await views.consent_changes(versions[0], 1) == [changes[1]]
    assert await views.consent_changes(versions[-1], 10) == []


# --- inbound messages and provider events ---------------------------------------------------------------------


async def test_an_inbound_message_is_recorded_once_per_provider_id(store: Store) -> None:
    first = InboundSms("bird-1", PHONE, "JOIN")
    again = InboundSms("bird-1", OTHER_PHONE, "STOP")

    assert await store.transaction(lambda tx: tx.inbound.record(first, NOW)) is True
    assert await store.transaction(lambda tx: tx.inbound.record(again, later(1))) is False
    assert await store.transaction(lambda tx: tx.inbound.record(InboundSms("bird-2", PHONE, "HELP"), NOW)) is True


async def test_stored_texts_wait_oldest_first_until_marked_processed(store: Store) -> None:
    # Ids against the order of arrival: only the time orders them; a redelivery does not wait twice.
    arrivals = [("c", PHONE, "JOIN", NOW), ("b", OTHER_PHONE, "HELP", later(1)), ("a", PHONE, "STOP", later(2))]
    for key, phone, text, at in arrivals:
        message = InboundSms(key, phone, text, reply_route=f"route-{key}")
        await store.transaction(lambda tx, m=message, at=at: tx.inbound.record(m, at))
    await store.transaction(lambda tx: tx.inbound.record(InboundSms("c", PHONE, "JOIN"), later(3)))

    waiting = await store.transaction(lambda tx: tx.inbound.pending())
    assert waiting == [InboundSms(key, phone, text, reply_route=f"route-{key}",
                                  received_at=at) for key, phone, text, at in arrivals]
    assert [m.provider_id for m in await store.transaction(lambda tx: tx.inbound.pending(limit=2))] == ["c", "b"]
    assert [m.provider_id for m in await store.transaction(lambda tx: tx.inbound.pending([PHONE]))] == ["c", "a"]
    assert await store.transaction(lambda tx: tx.inbound.pending([])) == []
    held = await store.transaction(lambda tx: tx.inbound.hold([PHONE, OTHER_PHONE, PHONE], wait=False))
    assert held == [PHONE, OTHER_PHONE]

    await store.transaction(lambda tx: tx.inbound.mark_processed(["c", "b"], later(4)))
    assert [m.provider_id for m in await store.transaction(lambda tx: tx.inbound.pending())] == ["a"]
    await store.transaction(lambda tx: tx.inbound.mark_processed(["a"], later(5), error="RuntimeError('bug')"))
    assert await store.transaction(lambda tx: tx.inbound.pending()) == []
    assert await store.transaction(lambda tx: tx.inbound.mark_processed([], later(6))) is None


async def test_members_are_saved_many_at_once_with_their_consent_changes(store: Store, views: Views) -> None:
    first, second = subscriber(PHONE), subscriber(OTHER_PHONE, email="bo@example.org")
    first.opt_in(later(1), "in-1")
    second.opt_out(later(2), "in-2")
    await store.transaction(lambda tx: tx.members.save_many([first, second]))
    await store.transaction(lambda tx: tx.members.save_many([]))

    assert (first.changes, second.changes) == ([], [])
    found = await store.transaction(lambda tx: tx.members.get_many([PHONE, OTHER_PHONE], for_update=True))
    assert found == {PHONE.e164: first, OTHER_PHONE.e164: second}
    assert _history(await views.subscriber_detail(PHONE)) == [(Consent.SUBSCRIBED, later(1), "in-1", "keyword")]
    assert _history(await views.subscriber_detail(OTHER_PHONE)) == [(Consent.OPTED_OUT, later(2), "in-2", "keyword")]


async def test_a_provider_event_is_recorded_once(store: Store) -> None:
    assert await store.transaction(lambda tx: tx.events.record("evt_1", NOW)) is True
    assert await store.transaction(lambda tx: tx.events.record("evt_1", later(1))) is False
    assert await store.transaction(lambda tx: tx.events.record("evt_2", NOW)) is True


async def test_audit_entries_are_appended(store: Store, views: Views) -> None:
    first = AuditEntry("payment.settled", NOW, PHONE.e164, "pay-1", {"amount_cents": 1000})
    second = AuditEntry("member.opted_out", later(1), PHONE.e164, None, {})
    await store.transaction(lambda tx: tx.audit.add(first))
    await store.transaction(lambda tx: tx.audit.add(second))

    assert [r.entry for r in (await views.audit_log(None, None)).items] == [second, first]


# --- payments -------------------------------------------------------------------------------------------------


async def test_a_saved_payment_reads_back_by_id_session_and_subscription(store: Store) -> None:
    saved = attrs.evolve(payment("pay-1", PaymentStatus.ACTIVE, subscription_id="sub_1", session_id="cs_1"),
                         customer_id="cus_1", past_due_notified=True, phone_proven=True, updated_at=later(5))
    await store.transaction(lambda tx: tx.payments.save(saved))

    assert await store.transaction(lambda tx: tx.payments.get("pay-1")) == saved
    assert await store.transaction(lambda tx: tx.payments.by_session("cs_1")) == saved
    assert await store.transaction(lambda tx: tx.payments.by_subscription("sub_1")) == saved


async def test_unknown_payments_read_back_as_none(store: Store) -> None:
    await store.transaction(lambda tx: tx.payments.save(payment("pay-1", subscription_id="sub_1",
                                                                session_id="cs_1")))

    assert await store.transaction(lambda tx: tx.payments.get("pay-2")) is None
    assert await store.transaction(lambda tx: tx.payments.by_session("cs_2")) is None
    assert await store.transaction(lambda tx: tx.payments.by_subscription("sub_2")) is None


async def test_saving_a_payment_again_updates_it(store: Store) -> None:
    await store.transaction(lambda tx: tx.payments.save(payment("pay-1", session_id="cs_1")))
    settled = attrs.evolve(payment("pay-1", PaymentStatus.ACTIVE, subscription_id="sub_1", session_id="cs_1"),
                           payment_type=None, customer_id="cus_1", updated_at=later(5))
    await store.transaction(lambda tx: tx.payments.save(settled))

    assert await store.transaction(lambda tx: tx.payments.get("pay-1")) == settled


async def test_live_subscriptions_are_the_numbers_billing_ones_with_a_subscription_id(store: Store) -> None:
    payments = [
        payment("p-active", PaymentStatus.ACTIVE, subscription_id="sub_active"),
        payment("p-past-due", PaymentStatus.PAST_DUE, subscription_id="sub_past_due"),
        payment("p-processing", PaymentStatus.PROCESSING, subscription_id="sub_processing"),
        payment("p-pending", PaymentStatus.PENDING, subscription_id="sub_pending"),
        payment("p-completed", PaymentStatus.COMPLETED, subscription_id="sub_completed"),
        payment("p-cancelled", PaymentStatus.CANCELLED, subscription_id="sub_cancelled"),
        payment("p-failed", PaymentStatus.FAILED, subscription_id="sub_failed"),
        payment("p-expired", PaymentStatus.EXPIRED, subscription_id="sub_expired"),
        payment("p-no-subscription", PaymentStatus.ACTIVE),
        payment("p-other-number", PaymentStatus.ACTIVE, phone=OTHER_PHONE, subscription_id="sub_other"),
    ]
    await store.transaction(for_each(payments, lambda tx, p: tx.payments.save(p)))

    live = await store.transaction(lambda tx: tx.payments.live_subscriptions(PHONE))

    assert sorted(live) == ["sub_active", "sub_past_due", "sub_processing"]


async def test_a_members_payments_are_those_of_the_number_or_the_email_oldest_first(store: Store) -> None:
    payments = [
        attrs.evolve(payment("p-2", PaymentStatus.COMPLETED), created_at=later(20)),
        attrs.evolve(payment("p-1", PaymentStatus.ACTIVE, subscription_id="sub_1"), created_at=later(10)),
        attrs.evolve(payment("p-same-email", phone=OTHER_PHONE), created_at=later(30)),
        attrs.evolve(payment("p-other", phone=OTHER_PHONE), email="bo@example.org", created_at=later(5)),
    ]
    await store.transaction(for_each(payments, lambda tx, p: tx.payments.save(p)))

    by_number = await store.transaction(lambda tx: tx.payments.of_member(PHONE))
    by_either = await store.transaction(lambda tx: tx.payments.of_member(PHONE, "ada@example.org"))

    assert [p.id for p in by_number] == ["p-1", "p-2"]
    assert by_number[0] == payments[1]
    assert [p.id for p in by_either] == ["p-1", "p-2", "p-same-email"]


async def test_a_once_only_key_is_recorded_once(store: Store) -> None:
    first = await store.transaction(lambda tx: tx.events.record("welcomed:+14155550123", NOW))
    second = await store.transaction(lambda tx: tx.events.record("welcomed:+14155550123", later(5)))

    assert (first, second) == (True, False)


# --- journeys and campaigns: what they hold -------------------------------------------------------------------


async def test_a_saved_journey_reads_back_with_its_greeting(store: Store) -> None:
    saved = attrs.evolve(journey("j-1"), greeting=Greeting.THANKS_FOR_GIFT)
    await store.transaction(lambda tx: tx.journeys.save(saved))

    assert await store.transaction(lambda tx: tx.journeys.get("j-1")) == saved


async def test_a_saved_journey_reads_back_with_its_steps(store: Store) -> None:
    saved = journey("j-1")
    saved.done(Step.PAYMENT_PROCESSED, later(1), "paid")
    saved.fail(Step.EMAIL_SENT, later(2), "smtp down", transient=True)
    saved.wait(Step.SMS_SENT, later(3), "queued as welcome:pay-j-1")
    await store.transaction(lambda tx: tx.journeys.save(saved))

    assert await store.transaction(lambda tx: tx.journeys.get("j-1")) == saved
    assert await store.transaction(lambda tx: tx.journeys.get("j-2")) is None


async def test_saving_a_journey_again_updates_its_steps(store: Store) -> None:
    await store.transaction(lambda tx: tx.journeys.save(journey("j-1")))
    finished = journey("j-1")
    finished.steps = {step: StepRecord(later(i), True, f"step {i}") for i, step in enumerate(Step)}
    finished.completed_at = later(10)
    await store.transaction(lambda tx: tx.journeys.save(finished))

    assert await store.transaction(lambda tx: tx.journeys.get("j-1")) == finished


async def test_a_saved_campaign_reads_back_with_its_progress(store: Store) -> None:
    saved = attrs.evolve(campaign("care-2026-11"), state=CampaignState.FINISHED, cursor="+14155550123",
                         selected=12, skipped={"opted_out": 3, "invalid_number": 1}, passes=2,
                         finished_at=later(600))
    await store.transaction(lambda tx: tx.campaigns.save(saved))

    assert await store.transaction(lambda tx: tx.campaigns.get("care-2026-11")) == saved
    assert await store.transaction(lambda tx: tx.campaigns.get("care-2026-12")) is None


async def test_saving_a_campaign_again_updates_its_progress(store: Store) -> None:
    await store.transaction(lambda tx: tx.campaigns.save(campaign("care-2026-11")))
    progressed = attrs.evolve(campaign("care-2026-11"), state=CampaignState.SENDING, cursor="+14155550199",
                              selected=40, skipped={"unpaid": 2})
    await store.transaction(lambda tx: tx.campaigns.save(progressed))

    assert await store.transaction(lambda tx: tx.campaigns.get("care-2026-11")) == progressed


# --- journeys and campaigns: schedule, claim, wake ------------------------------------------------------------


async def test_a_saved_item_is_not_due_until_scheduled(store: Store, scheduled: Scheduled) -> None:
    await store.transaction(lambda tx: scheduled.save(tx, "k1"))

    assert await claim(store, scheduled.queue, A, later(10**6)) == []


async def test_saving_an_item_keeps_its_schedule(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", later(30))

    await store.transaction(lambda tx: scheduled.save(tx, "k1"))

    assert await claim(store, scheduled.queue, A, later(29)) == []
    assert await claim(store, scheduled.queue, A, later(30)) == ["k1"]


async def test_saving_a_claimed_item_keeps_the_claim(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", NOW)
    assert await claim(store, scheduled.queue, A, NOW, until=later(60)) == ["k1"]

    await store.transaction(lambda tx: scheduled.save(tx, "k1"))

    assert await claim(store, scheduled.queue, B, later(30)) == []
    assert await wake(store, scheduled, "k1", later(30)) is False


async def test_a_scheduled_item_is_claimable_at_its_time_and_not_before(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", later(30))

    assert await claim(store, scheduled.queue, A, later(29)) == []
    assert await claim(store, scheduled.queue, A, later(30)) == ["k1"]


async def test_scheduling_an_item_for_none_makes_it_never_due(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", NOW)
    await schedule(store, scheduled, "k1", None)

    assert await claim(store, scheduled.queue, A, later(10**6)) == []


async def test_scheduling_a_claimed_item_releases_the_claim(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", NOW)
    assert await claim(store, scheduled.queue, A, NOW, until=later(600)) == ["k1"]

    await schedule(store, scheduled, "k1", later(10))
    await store.transaction(lambda tx: tx.leases.renew(A, later(3600)))

    assert await claim(store, scheduled.queue, B, later(10)) == ["k1"]


async def test_waking_an_item_after_its_claim_is_released_makes_it_due(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", NOW)
    assert await claim(store, scheduled.queue, A, NOW, until=later(600)) == ["k1"]
    await schedule(store, scheduled, "k1", None)

    assert await wake(store, scheduled, "k1", later(10)) is True
    assert await claim(store, scheduled.queue, B, later(10)) == ["k1"]


async def test_waking_a_claimed_item_changes_nothing(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", NOW)
    assert await claim(store, scheduled.queue, A, NOW, until=later(60)) == ["k1"]

    assert await wake(store, scheduled, "k1", later(10)) is False
    assert await claim(store, scheduled.queue, B, later(10)) == []
    assert await claim(store, scheduled.queue, B, later(59)) == []


async def test_waking_an_unscheduled_item_makes_it_due_by_then(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", None)

    assert await wake(store, scheduled, "k1", later(30)) is True
    assert await claim(store, scheduled.queue, A, later(29)) == []
    assert await claim(store, scheduled.queue, A, later(30)) == ["k1"]


async def test_waking_brings_a_later_due_time_forward(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", later(3600))

    assert await wake(store, scheduled, "k1", later(30)) is True
    assert await claim(store, scheduled.queue, A, later(30)) == ["k1"]


async def test_waking_never_delays_an_earlier_due_time(store: Store, scheduled: Scheduled) -> None:
    await add(store, scheduled.queue, "k1", later(30))

    assert await wake(store, scheduled, "k1", later(3600)) is True
    assert await claim(store, scheduled.queue, A, later(30)) == ["k1"]


async def test_waking_an_unknown_item_gives_false(store: Store, scheduled: Scheduled) -> None:
    assert await wake(store, scheduled, "nobody", NOW) is False
    assert await claim(store, scheduled.queue, A, later(10**6)) == []


# --- every queue: claims and leases ---------------------------------------------------------------------------


async def test_claim_returns_due_items_oldest_first_up_to_the_limit(store: Store, queue: Queue) -> None:
    for key, due in (("k3", later(-10)), ("k1", later(-30)), ("k4", later(-5)), ("k2", later(-20)),
                     ("future", later(1))):
        await add(store, queue, key, due)

    assert await claim(store, queue, A, NOW, limit=2) == ["k1", "k2"]
    assert await claim(store, queue, B, NOW, limit=10) == ["k3", "k4"]


async def test_a_claimed_item_is_not_claimable_again_while_its_lease_lasts(store: Store, queue: Queue) -> None:
    await add(store, queue, "k1", NOW)
    assert await claim(store, queue, A, NOW, until=later(60)) == ["k1"]

    assert await claim(store, queue, A, NOW) == []
    assert await claim(store, queue, B, later(59)) == []


async def test_a_claimed_item_is_claimable_again_once_its_lease_has_passed(store: Store, queue: Queue) -> None:
    await add(store, queue, "k1", NOW)
    assert await claim(store, queue, A, NOW, until=later(60)) == ["k1"]

    assert await claim(store, queue, B, later(61)) == ["k1"]
    assert await claim(store, queue, C, later(62)) == []


async def test_renewing_extends_the_owners_claims(store: Store, queue: Queue) -> None:
    await add(store, queue, "k1", NOW)
    assert await claim(store, queue, A, NOW, until=later(60)) == ["k1"]

    await store.transaction(lambda tx: tx.leases.renew(A, later(600)))

    assert await claim(store, queue, B, later(61)) == []
    assert await claim(store, queue, B, later(599)) == []
    assert await claim(store, queue, B, later(601)) == ["k1"]


async def test_renewing_leaves_other_owners_claims_alone(store: Store, queue: Queue) -> None:
    await add(store, queue, "mine", NOW)
    await add(store, queue, "theirs", later(1))
    assert await claim(store, queue, A, NOW, until=later(60)) == ["mine"]
    assert await claim(store, queue, B, later(1), until=later(60)) == ["theirs"]

    await store.transaction(lambda tx: tx.leases.renew(A, later(600)))

    assert await claim(store, queue, C, later(61)) == ["theirs"]


async def test_a_unit_of_work_that_claims_and_raises_leaves_the_items_claimable(store: Store, queue: Queue) -> None:
    await add(store, queue, "k1", NOW)

    def claim_and_fail(tx: Transaction) -> None:
        assert queue.claim(tx, lease(A), NOW, 10) == ["k1"]
        raise RuntimeError("the worker fails before it commits")

    with pytest.raises(RuntimeError):
        await store.transaction(claim_and_fail)

    assert await claim(store, queue, B, NOW) == ["k1"]


# --- received payment events ----------------------------------------------------------------------------------


def payment_event(event_id: str, session_id: str = "cs_1") -> PaymentEvent:
    return PaymentEvent(event_id, "checkout.session.completed",
                        {"id": session_id, "object": "checkout.session", "metadata": {"tier": "10"}, "amount": 1000})


async def test_an_event_is_received_once_and_keeps_what_it_carried(store: Store) -> None:
    assert await store.transaction(lambda tx: tx.received_events.receive(payment_event("evt_1"), NOW)) is True
    again = payment_event("evt_1", session_id="cs_other")
    assert await store.transaction(lambda tx: tx.received_events.receive(again, later(5))) is False

    (claimed,) = await store.transaction(lambda tx: tx.received_events.claim(lease(A), NOW, 10))

    assert claimed == ReceivedEvent(payment_event("evt_1"), received_at=NOW, next_attempt_at=NOW)


async def one_retrying_one_processed(store: Store) -> tuple[ReceivedEvent, ReceivedEvent]:
    """Two events claimed and saved: the first to be retried after a fault, the second applied."""
    for event_id in ("evt_1", "evt_2"):
        await store.transaction(lambda tx, e=event_id: tx.received_events.receive(payment_event(e), NOW))
    first, second = await store.transaction(lambda tx: tx.received_events.claim(lease(A), NOW, 10))
    retry = attrs.evolve(first, attempts=1, next_attempt_at=later(5), error="Stripe APIError (HTTP 500)")
    done = attrs.evolve(second, status="processed", attempts=1, next_attempt_at=None, processed_at=later(1))
    await store.transaction(lambda tx: (tx.received_events.save(retry), tx.received_events.save(done)))
    return retry, done


async def test_a_saved_event_records_its_outcome_and_only_pending_ones_are_claimed_again(store: Store) -> None:
    retry, _ = await one_retrying_one_processed(store)

    assert await store.transaction(lambda tx: tx.received_events.claim(lease(B), later(4), 10)) == []
    assert await store.transaction(lambda tx: tx.received_events.claim(lease(B), later(10**6), 10)) == [retry]


async def test_the_view_lists_events_not_yet_processed_with_their_last_error(backend: Backend) -> None:
    retry, done = await one_retrying_one_processed(backend.store)

    assert (await backend.views.received_events()).items == [retry]
    assert (await backend.views.received_events(pending_only=False)).items == [retry, done]


# --- cancellations --------------------------------------------------------------------------------------------


async def test_a_repeated_cancellation_request_keeps_the_first(store: Store) -> None:
    first = cancellation("sub_1", due=NOW)
    await store.transaction(lambda tx: tx.cancellations.request(first))
    repeat = cancellation("sub_1", due=later(-60), phone=OTHER_PHONE, requested_at=later(5))
    await store.transaction(lambda tx: tx.cancellations.request(repeat))

    claimed = await store.transaction(lambda tx: tx.cancellations.claim(lease(A), NOW, 10))

    assert claimed == [first]


async def test_only_pending_due_cancellations_are_claimed(store: Store) -> None:
    requested = [
        cancellation("sub_due", due=later(-10)),
        cancellation("sub_done", due=later(-20), status="done"),
        cancellation("sub_failed", due=later(-20), status="failed"),
        cancellation("sub_later", due=later(1)),
        cancellation("sub_never", due=None),
    ]
    await store.transaction(for_each(requested, lambda tx, c: tx.cancellations.request(c)))

    claimed = await store.transaction(lambda tx: tx.cancellations.claim(lease(A), NOW, 10))

    assert claimed == [requested[0]]


async def test_saving_a_cancellation_records_its_outcome_and_releases_the_claim(store: Store) -> None:
    await store.transaction(lambda tx: tx.cancellations.request(cancellation("sub_1")))
    (claimed,) = await store.transaction(lambda tx: tx.cancellations.claim(lease(A, 600), NOW, 10))
    retry = attrs.evolve(claimed, attempts=1, next_attempt_at=later(5), error="provider down")
    await store.transaction(lambda tx: tx.cancellations.save(retry))

    assert await store.transaction(lambda tx: tx.cancellations.claim(lease(B), later(4), 10)) == []
    assert await store.transaction(lambda tx: tx.cancellations.claim(lease(B), later(5), 10)) == [retry]


async def test_a_saved_pending_cancellation_already_due_is_claimable_at_once(store: Store) -> None:
    await store.transaction(lambda tx: tx.cancellations.request(cancellation("sub_1")))
    (claimed,) = await store.transaction(lambda tx: tx.cancellations.claim(lease(A, 600), NOW, 10))
    retry = attrs.evolve(claimed, attempts=1, next_attempt_at=later(-1), error="provider down")
    await store.transaction(lambda tx: tx.cancellations.save(retry))

    assert await store.transaction(lambda tx: tx.cancellations.claim(lease(B), NOW, 10)) == [retry]


async def test_a_cancellation_saved_as_done_is_not_claimed_again(store: Store) -> None:
    await store.transaction(lambda tx: tx.cancellations.request(cancellation("sub_1")))
    (claimed,) = await store.transaction(lambda tx: tx.cancellations.claim(lease(A), NOW, 10))
    await store.transaction(lambda tx: tx.cancellations.save(attrs.evolve(claimed, status="done", attempts=1)))

    assert await store.transaction(lambda tx: tx.cancellations.claim(lease(B), later(10**6), 10)) == []


async def test_renewing_does_not_extend_a_saved_cancellation(store: Store) -> None:
    await store.transaction(lambda tx: tx.cancellations.request(cancellation("sub_1")))
    (claimed,) = await store.transaction(lambda tx: tx.cancellations.claim(lease(A), NOW, 10))
    retry = attrs.evolve(claimed, attempts=1, next_attempt_at=later(5))
    await store.transaction(lambda tx: tx.cancellations.save(retry))

    await store.transaction(lambda tx: tx.leases.renew(A, later(600)))

    assert await store.transaction(lambda tx: tx.cancellations.claim(lease(B), later(5), 10)) == [retry]


# --- outbox: queueing -----------------------------------------------------------------------------------------


async def test_enqueue_once_queues_a_pending_message_under_its_key(store: Store) -> None:
    message = OutboundSms(id="welcome:pay-1", to=PHONE, text="Welcome to The Weft", kind=MessageKind.WELCOME,
                          reply_route="channel=ch-1&conversation=conv-1", journey_id="j-1", expires_at=later(3600))

    assert await store.transaction(lambda tx: tx.outbox.enqueue_once(message, later(5), NOW)) is True

    assert await outbox_entry(store, "welcome:pay-1") == OutboxEntry(
        message=message, status=DeliveryStatus.PENDING, attempts=0, created_at=NOW, next_attempt_at=later(5))
    assert await store.transaction(lambda tx: tx.outbox.get("welcome:pay-2")) is None


async def test_enqueue_once_ignores_a_second_message_with_the_same_key(store: Store) -> None:
    first = sms("reply:in-1", text="first text")
    await store.transaction(lambda tx: tx.outbox.enqueue_once(first, NOW, NOW))

    second = sms("reply:in-1", MessageKind.JOIN_LINK, text="second text", phone=OTHER_PHONE)
    assert await store.transaction(lambda tx: tx.outbox.enqueue_once(second, later(60), later(1))) is False

    assert await outbox_entry(store, "reply:in-1") == OutboxEntry(
        message=first, status=DeliveryStatus.PENDING, attempts=0, created_at=NOW, next_attempt_at=NOW)


async def test_enqueue_many_counts_only_new_keys(store: Store) -> None:
    await enqueue(store, care("care:1", "care-a"))
    batch = [(care("care:1", "care-b"), later(1)), (care("care:2"), later(2)), (care("care:3"), later(3))]

    assert await store.transaction(lambda tx: tx.outbox.enqueue_many(batch, NOW)) == 2
    assert await store.transaction(lambda tx: tx.outbox.enqueue_many([], NOW)) == 0

    assert (await outbox_entry(store, "care:1")).message.campaign_id == "care-a"
    assert (await outbox_entry(store, "care:3")).next_attempt_at == later(3)


async def test_enqueue_many_counts_a_key_repeated_in_one_batch_once(store: Store) -> None:
    batch = [(care("care:1", "care-a"), NOW), (care("care:1", "care-b"), later(1))]

    assert await store.transaction(lambda tx: tx.outbox.enqueue_many(batch, NOW)) == 1

    assert (await outbox_entry(store, "care:1")).message.campaign_id == "care-a"


# --- outbox: claiming -----------------------------------------------------------------------------------------


async def test_outbox_claims_are_per_lane(store: Store) -> None:
    await enqueue(store, sms("help:1"), due=later(-4))
    await enqueue(store, care("care:1"), due=later(-3))
    await enqueue(store, sms("help:2"), due=later(-2))
    await enqueue(store, care("care:2"), due=later(-1))

    assert keys(await claim_outbox(store, A, NOW, Lane.BROADCAST)) == ["care:1", "care:2"]
    assert keys(await claim_outbox(store, A, NOW, Lane.PRIORITY)) == ["help:1", "help:2"]


async def test_the_broadcast_lane_holds_only_care_messages(store: Store) -> None:
    await enqueue(store, care("care:1"), due=later(-2))
    await enqueue(store, sms("reply:1", MessageKind.JOIN_LINK), due=later(-1))
    await enqueue(store, sms("welcome:1", MessageKind.WELCOME), due=NOW)

    assert keys(await claim_outbox(store, A, NOW, Lane.BROADCAST)) == ["care:1"]
    assert keys(await claim_outbox(store, A, NOW, Lane.PRIORITY)) == ["reply:1", "welcome:1"]


async def test_outbox_claim_returns_entries_as_queued(store: Store) -> None:
    await enqueue(store, sms("reply:1"), due=later(-5))

    (claimed,) = await claim_outbox(store, A, NOW)

    assert claimed == OutboxEntry(message=sms("reply:1"), status=DeliveryStatus.PENDING, attempts=0, created_at=NOW,
                                  next_attempt_at=later(-5))


async def test_outbox_claim_skips_messages_that_are_not_pending(store: Store) -> None:
    for status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED, DeliveryStatus.EXPIRED):
        await with_status(store, status.value, status, next_attempt_at=later(-60))
    await enqueue(store, sms("pending"))

    assert keys(await claim_outbox(store, A, NOW)) == ["pending"]


async def test_outbox_claim_skips_messages_not_yet_due(store: Store) -> None:
    await enqueue(store, sms("later"), due=later(1))

    assert await claim_outbox(store, A, NOW) == []
    assert keys(await claim_outbox(store, A, later(1))) == ["later"]


async def test_a_message_whose_claim_lapsed_comes_back_in_doubt(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    (first,) = await claim_outbox(store, A, NOW, seconds=60)
    assert first.in_doubt is False

    (again,) = await claim_outbox(store, B, later(61))

    assert again.in_doubt is True
    assert (await outbox_entry(store, "reply:1")).in_doubt is True


async def test_a_message_recorded_back_as_pending_in_doubt_stays_in_doubt(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    await claim_outbox(store, A, NOW, seconds=60)
    (lapsed,) = await claim_outbox(store, B, later(61))
    await record(store, attrs.evolve(lapsed, attempts=1, next_attempt_at=later(62), in_doubt=True))

    (again,) = await claim_outbox(store, C, later(62))

    assert again.in_doubt is True and again.attempts == 1


async def test_a_message_recorded_back_as_pending_is_claimed_again_without_doubt(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    (claimed,) = await claim_outbox(store, A, NOW, seconds=600)
    await record(store, attrs.evolve(claimed, attempts=1, next_attempt_at=later(5), error="timeout"))

    assert await claim_outbox(store, B, later(4)) == []
    (again,) = await claim_outbox(store, B, later(5))

    assert again.in_doubt is False and again.attempts == 1 and again.error == "timeout"


# --- outbox: outcomes -----------------------------------------------------------------------------------------


async def test_recording_an_outcome_writes_its_delivery_fields(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    (claimed,) = await claim_outbox(store, A, NOW)
    sent = attrs.evolve(claimed, status=DeliveryStatus.SENT, attempts=2, next_attempt_at=None, provider_id="bird-9",
                        error="first try timed out", sent_at=later(3), first_attempt_at=later(1),
                        possible_duplicate=True)
    await record(store, sent)

    assert await outbox_entry(store, "reply:1") == sent


async def test_recording_an_outcome_keeps_the_message_itself(store: Store) -> None:
    await enqueue(store, sms("reply:1", text="the queued text"))
    (claimed,) = await claim_outbox(store, A, NOW)
    altered = attrs.evolve(claimed, message=sms("reply:1", text="another text", phone=OTHER_PHONE),
                           created_at=later(100), status=DeliveryStatus.SENT, attempts=1, sent_at=later(1))
    await record(store, altered)

    entry = await outbox_entry(store, "reply:1")

    assert entry.message == sms("reply:1", text="the queued text")
    assert entry.created_at == NOW
    assert entry.status is DeliveryStatus.SENT and entry.sent_at == later(1)


async def test_recording_an_unknown_message_writes_nothing(store: Store) -> None:
    ghost = OutboxEntry(message=sms("ghost"), status=DeliveryStatus.SENT, attempts=1, created_at=NOW)
    await record(store, ghost)

    assert await store.transaction(lambda tx: tx.outbox.get("ghost")) is None


async def test_recording_an_outcome_releases_the_claim(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    (claimed,) = await claim_outbox(store, A, NOW, seconds=600)
    await record(store, attrs.evolve(claimed, attempts=1, next_attempt_at=later(5)))

    await store.transaction(lambda tx: tx.leases.renew(A, later(3600)))

    assert keys(await claim_outbox(store, B, later(5))) == ["reply:1"]


async def test_requeue_makes_a_failed_message_due_now_with_a_fresh_lifetime(store: Store) -> None:
    failed = await with_status(store, "reply:1", DeliveryStatus.FAILED, attempts=3, next_attempt_at=None,
                               error="refused", first_attempt_at=later(-600))

    again = await store.transaction(lambda tx: tx.outbox.requeue("reply:1", later(60)))

    expected = attrs.evolve(failed, status=DeliveryStatus.PENDING, attempts=0, error=None, first_attempt_at=None,
                            next_attempt_at=later(60))
    assert again == expected
    assert await outbox_entry(store, "reply:1") == expected
    assert await claim_outbox(store, B, later(59)) == []
    assert await claim_outbox(store, B, later(60)) == [expected]


async def test_requeue_makes_an_expired_message_due_again(store: Store) -> None:
    await with_status(store, "reply:1", DeliveryStatus.EXPIRED, attempts=5, next_attempt_at=None,
                      error="lifetime over", first_attempt_at=later(-600))

    again = await store.transaction(lambda tx: tx.outbox.requeue("reply:1", NOW))

    assert again is not None and again.status is DeliveryStatus.PENDING and again.attempts == 0
    assert keys(await claim_outbox(store, B, NOW)) == ["reply:1"]


async def test_requeue_after_a_lapsed_claim_clears_the_doubt(store: Store) -> None:
    await enqueue(store, sms("reply:1"))
    await claim_outbox(store, A, NOW, seconds=60)
    (lapsed,) = await claim_outbox(store, B, later(61))
    await record(store, attrs.evolve(lapsed, status=DeliveryStatus.FAILED, attempts=1, error="refused"))

    again = await store.transaction(lambda tx: tx.outbox.requeue("reply:1", later(120)))

    assert again is not None and again.in_doubt is False
    (claimed,) = await claim_outbox(store, C, later(120))
    assert claimed.in_doubt is False


@pytest.mark.parametrize("status", [DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED])
async def test_requeue_leaves_a_message_with_nothing_to_redo_as_it_was(store: Store, status: DeliveryStatus) -> None:
    if status is DeliveryStatus.PENDING:
        await enqueue(store, sms("reply:1"), due=later(30))
    else:
        await with_status(store, "reply:1", status, attempts=1, next_attempt_at=None, error="kept")
    before = await outbox_entry(store, "reply:1")

    assert await store.transaction(lambda tx: tx.outbox.requeue("reply:1", NOW)) is None

    assert await outbox_entry(store, "reply:1") == before


async def test_requeue_of_an_unknown_key_gives_none(store: Store) -> None:
    assert await store.transaction(lambda tx: tx.outbox.requeue("ghost", NOW)) is None
    assert await store.transaction(lambda tx: tx.outbox.get("ghost")) is None


# --- outbox: counts -------------------------------------------------------------------------------------------


async def test_sent_counts_accumulate_per_day(store: Store) -> None:
    await store.transaction(lambda tx: tx.outbox.add_sent("2026-11-01", 3))
    await store.transaction(lambda tx: tx.outbox.add_sent("2026-11-01", 2))
    await store.transaction(lambda tx: tx.outbox.add_sent("2026-11-02", 1))

    counts = await store.transaction(lambda tx: [tx.outbox.count_sent(day)
                                                 for day in ("2026-11-01", "2026-11-02", "2026-11-03")])

    assert counts == [5, 1, 0]


async def test_a_batch_larger_than_one_statement_is_queued_and_recorded_whole(store: Store) -> None:
    batch = [(care(f"c:{n}"), NOW) for n in range(1203)]
    assert await store.transaction(lambda tx: tx.outbox.enqueue_many(batch, NOW)) == 1203
    assert await store.transaction(lambda tx: tx.outbox.enqueue_many(batch[1000:] + [(care("c:new"), NOW)], NOW)) == 1
    claimed = await claim_outbox(store, A, NOW, Lane.BROADCAST, limit=2000)
    await record(store, *(attrs.evolve(e, status=DeliveryStatus.SENT, attempts=1, sent_at=later(1),
                                       next_attempt_at=None, provider_id=f"p-{e.message.id}") for e in claimed))
    assert len(claimed) == 1204
    assert await outbox_entry(store, "c:1202") == attrs.evolve(
        next(e for e in claimed if e.message.id == "c:1202"), status=DeliveryStatus.SENT, attempts=1,
        sent_at=later(1), next_attempt_at=None, provider_id="p-c:1202")
    assert await claim_outbox(store, B, later(10**6), Lane.BROADCAST, limit=2000) == []


async def test_claimed_counts_what_one_owner_holds_in_one_lane_until_recorded(store: Store) -> None:
    await store.transaction(lambda tx: tx.outbox.enqueue_many(
        [(care("a"), NOW), (care("b"), NOW), (care("c"), NOW), (sms("reply:1"), NOW)], NOW))
    mine = await store.transaction(lambda tx: tx.outbox.claim(Lane.BROADCAST, lease("me"), NOW, 2))
    await store.transaction(lambda tx: tx.outbox.claim(Lane.BROADCAST, lease("other"), NOW, 1))
    await store.transaction(lambda tx: tx.outbox.claim(Lane.PRIORITY, lease("me"), NOW, 1))

    def counts(tx: Transaction) -> list[int]:
        return [tx.outbox.count_claimed(Lane.BROADCAST, "me"), tx.outbox.count_claimed(Lane.PRIORITY, "me"),
                tx.outbox.count_claimed(Lane.BROADCAST, "other")]

    assert await store.transaction(counts) == [2, 1, 1]
    sent = attrs.evolve(mine[0], status=DeliveryStatus.SENT, sent_at=NOW, next_attempt_at=None)
    await store.transaction(lambda tx: tx.outbox.record([sent]))
    assert await store.transaction(counts) == [1, 1, 1]


async def _campaign_messages(store: Store) -> None:
    """Campaign care-a: two pending, three sent (one a possible duplicate), one failed, one suppressed; plus
    messages of another campaign and of none."""
    mine = [care(f"a:{n}", "care-a") for n in range(7)]
    others = [care("b:0", "care-b"), care("b:1", "care-b"), sms("reply:1")]
    await enqueue(store, *mine, *others)
    claimed = {e.message.id: e for e in await claim_outbox(store, A, NOW, Lane.BROADCAST, limit=100)}
    claimed |= {e.message.id: e for e in await claim_outbox(store, A, NOW, Lane.PRIORITY, limit=100)}
    sent = DeliveryStatus.SENT
    await record(
        store,
        attrs.evolve(claimed["a:0"], next_attempt_at=later(600)),
        attrs.evolve(claimed["a:1"], next_attempt_at=later(600), possible_duplicate=True),
        attrs.evolve(claimed["a:2"], status=sent, attempts=1, sent_at=later(-60), next_attempt_at=None),
        attrs.evolve(claimed["a:3"], status=sent, attempts=1, sent_at=later(-61), next_attempt_at=None),
        attrs.evolve(claimed["a:4"], status=sent, attempts=2, sent_at=later(-5), next_attempt_at=None,
                     possible_duplicate=True),
        attrs.evolve(claimed["a:5"], status=DeliveryStatus.FAILED, attempts=1, sent_at=later(-1),
                     next_attempt_at=None),
        attrs.evolve(claimed["a:6"], status=DeliveryStatus.SUPPRESSED, next_attempt_at=None),
        attrs.evolve(claimed["b:0"], status=sent, attempts=1, sent_at=later(-1), next_attempt_at=None,
                     possible_duplicate=True),
        attrs.evolve(claimed["reply:1"], status=sent, attempts=1, sent_at=later(-1), next_attempt_at=None),
    )


async def test_campaign_counts_count_one_campaigns_messages_by_status(store: Store) -> None:
    await _campaign_messages(store)

    counts = await store.transaction(lambda tx: tx.outbox.campaign_counts("care-a", NOW))

    assert counts.by_status == {DeliveryStatus.PENDING: 2, DeliveryStatus.SENT: 3, DeliveryStatus.FAILED: 1,
                                DeliveryStatus.SUPPRESSED: 1}
    assert counts.total == 7
    assert await store.transaction(lambda tx: tx.outbox.campaign_counts("care-z", NOW).by_status) == {}


async def test_a_campaign_is_pending_while_any_of_its_messages_is(store: Store) -> None:
    await _campaign_messages(store)  # care-a: a:0 and a:1 pending; care-b: b:1 claimed, still pending

    def pending(tx: Transaction) -> list[bool]:
        return [tx.outbox.campaign_pending(c) for c in ("care-a", "care-b", "care-z")]

    assert await store.transaction(pending) == [True, True, False]

    def send_the_rest_of_care_a(tx: Transaction) -> None:
        entries = [tx.outbox.get(key) for key in ("a:0", "a:1")]
        tx.outbox.record([attrs.evolve(e, status=DeliveryStatus.SENT, attempts=1, sent_at=NOW, next_attempt_at=None)
                          for e in entries if e is not None])

    await store.transaction(send_the_rest_of_care_a)
    assert await store.transaction(pending) == [False, True, False]


async def test_campaign_counts_count_possible_duplicates(store: Store) -> None:
    await _campaign_messages(store)

    counts = await store.transaction(lambda tx: tx.outbox.campaign_counts("care-a", NOW))

    assert counts.possible_duplicates == 2


async def test_campaign_counts_count_messages_sent_within_the_last_minute(store: Store) -> None:
    await _campaign_messages(store)

    counts = await store.transaction(lambda tx: [tx.outbox.campaign_counts("care-a", at).sent_last_minute
                                                 for at in (NOW, later(-5), later(55), later(56))])

    assert counts == [2, 3, 1, 0]


# --- named leases ---------------------------------------------------------------------------------------------


async def take(store: Store, name: str, owner: str, now: datetime, until: datetime) -> bool:
    return await store.transaction(lambda tx: tx.leases.take(name, owner, now, until))


async def test_receipts_move_a_messages_delivery_state_forward_only_and_unknown_ids_are_ignored(
    store: Store,
) -> None:
    await with_status(store, "reply:1", DeliveryStatus.SENT, provider_id="p-1")
    receipts = [DeliveryReceipt("p-1", DeliveryState.DELIVERED, later(5)),
                DeliveryReceipt("p-1", DeliveryState.SENT, later(3)),
                DeliveryReceipt("p-unknown", DeliveryState.FAILED, later(4), error_code="30003")]
    matched = await store.transaction(lambda tx: tx.outbox.apply_receipts(receipts, later(9)))
    failed_late = [DeliveryReceipt("p-1", DeliveryState.UNDELIVERED, later(6), error_code="30005")]
    assert await store.transaction(lambda tx: tx.outbox.apply_receipts(failed_late, later(9))) == 1

    entry = await outbox_entry(store, "reply:1")
    assert matched == 2
    assert (entry.delivery_state, entry.delivery_at, entry.delivery_error_code) == (
        DeliveryState.DELIVERED, later(5), None)
    assert entry.status is DeliveryStatus.SENT


async def test_a_receipt_with_no_time_is_dated_when_it_arrived_and_a_reference_finds_the_message(
    store: Store,
) -> None:
    await with_status(store, "reply:2", DeliveryStatus.SENT)
    receipt = DeliveryReceipt("p-2", DeliveryState.SENT, None, reference="reply:2")
    assert await store.transaction(lambda tx: tx.outbox.apply_receipts([receipt], later(7))) == 1
    entry = await outbox_entry(store, "reply:2")
    assert (entry.delivery_state, entry.delivery_at, entry.provider_id) == (DeliveryState.SENT, later(7), "p-2")


async def test_texts_the_provider_sent_are_recorded_once_as_sent_and_ours_are_left_out(store: Store) -> None:
    await with_status(store, "reply:1", DeliveryStatus.SENT, provider_id="p-ours")
    found = [ProviderSentSms("p-auto", PHONE, "From the flow", later(-60)),
             ProviderSentSms("p-ours", PHONE, "Reply STOP to stop", later(-50)),
             ProviderSentSms("p-echo", PHONE, "Reply STOP to stop", later(-50), reference="reply:1")]
    assert await store.transaction(lambda tx: tx.outbox.record_provider_sent(found, NOW)) == 1
    assert await store.transaction(lambda tx: tx.outbox.record_provider_sent(found, NOW)) == 0

    entry = await outbox_entry(store, "provider:p-auto")
    assert (entry.status, entry.message.kind, entry.message.text, entry.provider_id, entry.sent_at) == (
        DeliveryStatus.SENT, MessageKind.SENT_BY_PROVIDER, "From the flow", "p-auto", later(-60))
    assert await claim_outbox(store, A, later(10**6)) == []  # history, never sent by us


async def test_a_sync_cursor_is_kept_by_name(store: Store) -> None:
    assert await store.transaction(lambda tx: tx.cursors.get("sync:bird")) is None
    await store.transaction(lambda tx: tx.cursors.set("sync:bird", "2026-11-01T11:00:00+00:00", NOW))
    await store.transaction(lambda tx: tx.cursors.set("sync:bird", "2026-11-01T12:00:00+00:00", later(1)))
    await store.transaction(lambda tx: tx.cursors.set("sync:other", "x", NOW))
    assert await store.transaction(lambda tx: tx.cursors.get("sync:bird")) == "2026-11-01T12:00:00+00:00"


async def test_a_route_is_kept_with_its_inbound_text_and_its_reply(store: Store) -> None:
    text = InboundSms("in-route", PHONE, "LOVE", reply_route="from=%2B14155550100")
    await store.transaction(lambda tx: tx.inbound.record(text, NOW))
    reply = attrs.evolve(sms("reply:in-route"), reply_route="from=%2B14155550100")
    await enqueue(store, reply)
    (waiting,) = await store.transaction(lambda tx: tx.inbound.pending([PHONE]))
    assert waiting.reply_route == "from=%2B14155550100"
    assert (await outbox_entry(store, "reply:in-route")).message.reply_route == "from=%2B14155550100"


async def test_a_free_lease_can_be_taken(store: Store) -> None:
    assert await take(store, "scheduler", A, NOW, later(60)) is True


async def test_a_held_lease_cannot_be_taken_by_another_owner_before_it_expires(store: Store) -> None:
    await take(store, "scheduler", A, NOW, later(60))

    assert await take(store, "scheduler", B, later(30), later(90)) is False
    assert await take(store, "scheduler", B, later(60), later(90)) is False
    assert await take(store, "other", B, later(30), later(90)) is True


async def test_an_expired_lease_can_be_taken_by_another_owner(store: Store) -> None:
    await take(store, "scheduler", A, NOW, later(60))

    assert await take(store, "scheduler", B, later(61), later(120)) is True
    assert await take(store, "scheduler", A, later(62), later(120)) is False


async def test_the_holder_can_take_its_lease_again(store: Store) -> None:
    await take(store, "scheduler", A, NOW, later(60))

    assert await take(store, "scheduler", A, later(30), later(300)) is True
    assert await take(store, "scheduler", B, later(200), later(400)) is False


async def test_a_released_lease_can_be_taken_by_another_owner_and_only_the_holder_releases(store: Store) -> None:
    await store.transaction(lambda tx: tx.leases.take("sync:bird", A, NOW, later(60)))
    await store.transaction(lambda tx: tx.leases.release("sync:bird", B))
    assert not await store.transaction(lambda tx: tx.leases.take("sync:bird", B, NOW, later(60)))
    await store.transaction(lambda tx: tx.leases.release("sync:bird", A))
    assert await store.transaction(lambda tx: tx.leases.take("sync:bird", B, NOW, later(60)))


async def test_renewing_extends_the_owners_named_leases(store: Store) -> None:
    await take(store, "scheduler", A, NOW, later(60))
    await take(store, "campaigns", A, NOW, later(60))

    await store.transaction(lambda tx: tx.leases.renew(A, later(600)))

    assert await take(store, "scheduler", B, later(61), later(700)) is False
    assert await take(store, "campaigns", B, later(599), later(700)) is False
    assert await take(store, "scheduler", B, later(601), later(700)) is True


async def test_renewing_leaves_other_owners_named_leases_alone(store: Store) -> None:
    await take(store, "scheduler", A, NOW, later(60))
    await take(store, "campaigns", B, NOW, later(60))

    await store.transaction(lambda tx: tx.leases.renew(A, later(600)))

    assert await take(store, "campaigns", C, later(61), later(700)) is True
    assert await take(store, "scheduler", C, later(61), later(700)) is False


# --- units of work that fail ----------------------------------------------------------------------------------


async def test_a_unit_of_work_that_raises_leaves_no_trace(store: Store, views: Views) -> None:
    def everything_then_fail(tx: Transaction) -> None:
        member = subscriber()
        member.opt_in(NOW, "in-1")
        tx.members.save(member)
        tx.inbound.record(InboundSms("bird-1", PHONE, "JOIN"), NOW)
        tx.payments.save(payment("pay-1", PaymentStatus.ACTIVE, subscription_id="sub_1", session_id="cs_1"))
        tx.events.record("evt_1", NOW)
        tx.audit.add(AuditEntry("member.joined", NOW, PHONE.e164))
        tx.journeys.save(journey("j-1"))
        tx.journeys.schedule("j-1", NOW)
        tx.cancellations.request(cancellation("sub_1"))
        tx.outbox.enqueue_once(sms("reply:1"), NOW, NOW)
        tx.outbox.add_sent("2026-11-01", 1)
        tx.campaigns.save(campaign("care-2026-11"))
        tx.campaigns.schedule("care-2026-11", NOW)
        tx.leases.take("scheduler", A, NOW, later(60))
        raise RuntimeError("the unit fails at the end")

    with pytest.raises(RuntimeError, match="the unit fails at the end"):
        await store.transaction(everything_then_fail)

    def read_back(tx: Transaction) -> list[object]:
        return [
            tx.members.get(PHONE), tx.payments.get("pay-1"), tx.payments.by_subscription("sub_1"),
            tx.journeys.get("j-1"), tx.outbox.get("reply:1"), tx.outbox.count_sent("2026-11-01"),
            tx.campaigns.get("care-2026-11"), tx.journeys.claim(lease(B), later(10), 10),
            tx.cancellations.claim(lease(B), later(10), 10), tx.campaigns.claim(lease(B), later(10), 10),
            tx.inbound.record(InboundSms("bird-1", PHONE, "JOIN"), NOW), tx.events.record("evt_1", NOW),
            tx.leases.take("scheduler", B, later(1), later(60)),
        ]

    assert await store.transaction(read_back) == [None, None, None, None, None, 0, None, [], [], [], True, True,
                                                  True]
    assert (await views.audit_log(None, None)).items == []
    assert await views.subscriber_detail(PHONE) is None


async def test_a_unit_of_work_that_raises_leaves_earlier_state_as_it_was(store: Store) -> None:
    member = subscriber(email="ada@example.org")
    await store.transaction(lambda tx: tx.members.save(member))
    await store.transaction(lambda tx: tx.payments.save(payment("pay-1", session_id="cs_1")))
    await store.transaction(lambda tx: tx.outbox.add_sent("2026-11-01", 4))

    def change_then_fail(tx: Transaction) -> None:
        loaded = tx.members.get(PHONE)
        assert loaded is not None
        loaded.email = "changed@example.org"
        tx.members.save(loaded)
        tx.payments.save(payment("pay-1", PaymentStatus.CANCELLED, session_id="cs_1"))
        tx.outbox.add_sent("2026-11-01", 10)
        raise RuntimeError("the unit fails")

    with pytest.raises(RuntimeError):
        await store.transaction(change_then_fail)

    assert await store.transaction(lambda tx: tx.members.get(PHONE)) == member
    assert await store.transaction(lambda tx: tx.payments.get("pay-1")) == payment("pay-1", session_id="cs_1")
    assert await store.transaction(lambda tx: tx.outbox.count_sent("2026-11-01")) == 4


# --- the read side's order ------------------------------------------------------------------------------------


async def test_the_admin_lists_come_newest_first_and_by_id_among_equals(store: Store, views: Views) -> None:
    def write(tx: Transaction) -> None:
        for key, seconds in (("b", 0), ("a", 0), ("c", 5)):
            tx.journeys.save(attrs.evolve(journey(key), started_at=later(seconds)))
            tx.payments.save(attrs.evolve(payment(f"pay-{key}"), created_at=later(seconds)))
        tx.outbox.enqueue_once(sms("m-b"), NOW, NOW)
        tx.outbox.enqueue_once(sms("m-a"), NOW, NOW)

    await store.transaction(write)
    await store.transaction(lambda tx: tx.outbox.enqueue_once(sms("m-c"), later(5), later(5)))

    assert [j.id for j in (await views.journeys()).items] == ["c", "a", "b"]
    assert [p.id for p in (await views.payments()).items] == ["pay-c", "pay-a", "pay-b"]
    assert [e.message.id for e in (await views.outbox()).items] == ["m-c", "m-a", "m-b"]
    assert [j.id for j in (await views.journeys(limit=1)).items] == ["c"]


async def test_the_failed_texts_are_those_that_never_reached_the_phone_newest_first(
    store: Store, views: Views,
) -> None:
    await with_status(store, "refused", DeliveryStatus.FAILED, error="21211")
    await with_status(store, "expired", DeliveryStatus.EXPIRED)
    await with_status(store, "undelivered", DeliveryStatus.SENT, provider_id="p-1")
    await with_status(store, "delivered", DeliveryStatus.SENT, provider_id="p-2")
    await with_status(store, "suppressed", DeliveryStatus.SUPPRESSED)
    await enqueue(store, sms("waiting"))
    receipts = [DeliveryReceipt("p-1", DeliveryState.UNDELIVERED, later(1), error_code="30003"),
                DeliveryReceipt("p-2", DeliveryState.DELIVERED, later(1))]
    await store.transaction(lambda tx: tx.outbox.apply_receipts(receipts, later(2)))

    failed = (await views.outbox(failed_only=True)).items
    every = (await views.outbox()).items

    assert sorted(e.message.id for e in failed) == ["expired", "refused", "undelivered"]
    assert [e.message.id for e in failed] == [e.message.id for e in every if e.failed]  # the same order
    assert len(every) == 6
    pages = await _walk(lambda after: views.outbox(failed_only=True, after=after, limit=2))
    assert [[e.message.id for e in page] for page in pages] == [[e.message.id for e in failed[:2]],
                                                                [failed[2].message.id]]


async def _walk(read: Callable[[Position | None], Any]) -> list[list[str]]:
    """Every page of a list, following its cursors, as lists of keys."""
    pages, after = [], None
    while True:
        page = await read(after)
        pages.append(page.items)
        if page.next is None:
            return pages
        after = Position.decode(page.next)


async def test_every_list_pages_by_cursor_through_ties_without_gaps_or_repeats(store: Store, views: Views) -> None:
    def write(tx: Transaction) -> None:
        for index in range(7):
            phone = PhoneNumber(f"+1415555{index:04d}")
            at = later(index // 3)  # three members share each second: the cursor must break the ties
            tx.members.save(attrs.evolve(subscriber(phone), created_at=at))
            tx.payments.save(attrs.evolve(payment(f"pay-{index}"), created_at=at))
            tx.audit.add(AuditEntry("member.joined", at, phone.e164))

    await store.transaction(write)

    members = await _walk(lambda after: views.subscribers(after=after, limit=3))
    payments = await _walk(lambda after: views.payments(after=after, limit=2))
    audit = await _walk(lambda after: views.audit_log(None, None, after=after, limit=4))
    assert [[s.phone.e164[-4:] for s in page] for page in members] == [
        ["0006", "0003", "0004"], ["0005", "0000", "0001"], ["0002"]]
    assert [p.id for page in payments for p in page] == ["pay-6", "pay-3", "pay-4", "pay-5", "pay-0", "pay-1",
                                                        "pay-2"]
    assert [len(page) for page in audit] == [4, 3]
    assert [r.entry.phone[-4:] for page in audit for r in page if r.entry.phone] == [
        "0006", "0003", "0004", "0005", "0000", "0001", "0002"]


async def test_members_are_found_by_number_email_consent_and_tier(store: Store, views: Views) -> None:
    def write(tx: Transaction) -> None:
        tx.members.save(subscriber(PHONE, email="ada@example.org", consent=Consent.SUBSCRIBED))
        tx.members.save(subscriber(OTHER_PHONE, consent=Consent.OPTED_OUT, membership=Membership.PAID,
                                   paid_tier="10"))

    await store.transaction(write)

    async def phones(query: MemberQuery) -> list[str]:
        return [s.phone.e164 for s in (await views.subscribers(query)).items]

    assert await phones(MemberQuery(phone=PHONE)) == [PHONE.e164]
    assert await phones(MemberQuery(email="ada@example.org")) == [PHONE.e164]
    assert await phones(MemberQuery(consent=Consent.OPTED_OUT)) == [OTHER_PHONE.e164]
    assert await phones(MemberQuery(tier="paid")) == [OTHER_PHONE.e164]
    assert await phones(MemberQuery(tier="10")) == [OTHER_PHONE.e164]
    assert await phones(MemberQuery(tier="free", consent=Consent.SUBSCRIBED)) == [PHONE.e164]
    assert await phones(MemberQuery(email="nobody@example.org")) == []


async def test_a_members_detail_lists_its_payments_and_their_journeys_newest_first(store: Store, views: Views) -> None:
    def write(tx: Transaction) -> None:
        tx.members.save(subscriber())
        tx.payments.save(attrs.evolve(payment("pay-old"), created_at=later(-60)))
        tx.payments.save(payment("pay-new"))
        tx.payments.save(payment("pay-other", phone=OTHER_PHONE))
        tx.journeys.save(Journey(id="j-new", payment_id="pay-new", started_at=NOW))
        tx.journeys.save(Journey(id="j-other", payment_id="pay-other", started_at=NOW))

    await store.transaction(write)

    detail = await views.subscriber_detail(PHONE)
    assert detail is not None
    assert [p.id for p in detail.payments] == ["pay-new", "pay-old"]
    assert [j.id for j in detail.journeys] == ["j-new"]
