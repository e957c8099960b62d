"""Keeping the organisers' base in step (PushToMirror on the queue worker) and the one-time import, with fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from tests.fakes import FakeOrganiserBase, FixedClock, InMemoryStore, InMemoryViews
from weft.application.import_base import ImportFromBase
from weft.application.mirror import MIRROR_LEASE, PushToMirror
from weft.application.ports import BaseNumberRow, BasePaymentRow
from weft.application.unit_of_work import Transaction
from weft.application.work_queue import LeaseSettings, QueueWorker, RetryPolicy
from weft.domain.errors import MirrorRejected, MirrorUnavailable
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Subscriber
from weft.domain.tiers import PaymentType

PHONE = PhoneNumber("+14155550123")
CREATED = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


@attrs.define
class Mirror:
    store: InMemoryStore
    base: FakeOrganiserBase
    clock: FixedClock
    worker: QueueWorker  # type: ignore[type-arg]

    async def drain(self) -> int:
        return await self.worker.drain()

    async def backlog_waiting(self) -> int:
        return (await InMemoryViews(self.store, self.clock).mirror_status()).backlog.waiting


def mirror(owner: str = "worker-a") -> Mirror:
    store, base, clock = InMemoryStore(mirror=True), FakeOrganiserBase(), FixedClock()
    work = PushToMirror(base, clock, RetryPolicy(base_delay=1.0, max_delay=60.0, lifetime=None), rejected_delay=600)
    return Mirror(store, base, clock, QueueWorker(work, store, clock, LeaseSettings(owner)))


def member(phone: str = PHONE.e164, message: str = "LOVE") -> Subscriber:
    subscriber = Subscriber.first_contact(PhoneNumber(phone), CREATED)
    subscriber.record_inbound(message, CREATED)
    return subscriber


async def test_changes_made_before_a_push_are_written_once_with_the_latest_state() -> None:
    m = mirror()
    await m.store.transaction(lambda tx: tx.members.save(member(message="LOVE")))
    await m.store.transaction(lambda tx: tx.members.save(member(message="STOP")))

    await m.drain()

    assert m.base.writes == [[PHONE.e164]]
    assert m.base.numbers[PHONE.e164].last_message == "STOP"
    assert await m.backlog_waiting() == 0


async def test_copies_go_ten_records_a_request() -> None:
    m = mirror()
    await m.store.transaction(lambda tx: tx.members.save_many([member(f"+1415555{i:04d}") for i in range(25)]))

    await m.drain()

    assert sorted(len(w) for w in m.base.writes) == [5, 10, 10]
    assert len(m.base.numbers) == 25


async def test_a_payment_is_written_under_its_checkout_session() -> None:
    m = mirror()
    payment = Payment(id="pay_1", phone=PHONE, email="ada@example.org", tier="10", amount_cents=1000,
                      payment_type=PaymentType.MONTHLY, created_at=CREATED, updated_at=CREATED,
                      checkout_session_id="cs_1")
    await m.store.transaction(lambda tx: tx.payments.save(payment))

    await m.drain()

    assert m.base.writes == [["cs_1"]]


async def test_after_a_429_the_copy_waits_as_long_as_airtable_asks() -> None:
    m = mirror()
    m.base.failures.append(MirrorUnavailable("Airtable asked us to slow down (429)", retry_after=30))
    await m.store.transaction(lambda tx: tx.members.save(member()))

    await m.drain()
    m.clock.advance(29)
    await m.drain()
    assert m.base.writes == []
    m.clock.advance(1)
    await m.drain()

    assert m.base.writes == [[PHONE.e164]]


async def test_a_refused_copy_is_kept_with_its_error_and_asked_again_later() -> None:
    m = mirror()
    m.base.failures.append(MirrorRejected('Airtable refused the request (422): UNKNOWN_FIELD_NAME: "Consent"'))
    await m.store.transaction(lambda tx: tx.members.save(member()))

    await m.drain()
    status = await InMemoryViews(m.store, m.clock).mirror_status()
    m.clock.advance(600)
    await m.drain()

    assert (status.backlog.waiting, status.backlog.failing) == (1, 1)
    assert "UNKNOWN_FIELD_NAME" in (status.backlog.last_error or "")
    assert status.last_pushed_at is None
    assert m.base.writes == [[PHONE.e164]]
    assert (await InMemoryViews(m.store, m.clock).mirror_status()).last_pushed_at == m.clock.now()


async def test_a_change_made_while_its_copy_is_in_flight_is_pushed_again() -> None:
    m = mirror()
    await m.store.transaction(lambda tx: tx.members.save(member(message="LOVE")))
    original = m.base.upsert_numbers

    async def change_during_write(subscribers: list[Subscriber]) -> None:
        m.base.upsert_numbers = original  # type: ignore[method-assign]
        await m.store.transaction(lambda tx: tx.members.save(member(message="STOP")))
        await original(subscribers)

    m.base.upsert_numbers = change_during_write  # type: ignore[method-assign]
    await m.drain()
    await m.drain()

    assert m.base.writes == [[PHONE.e164], [PHONE.e164]]
    assert m.base.numbers[PHONE.e164].last_message == "STOP"


async def test_only_the_process_holding_the_mirror_lease_pushes() -> None:
    m = mirror("worker-b")
    await m.store.transaction(lambda tx: tx.leases.take(MIRROR_LEASE, "worker-a", m.clock.now(),
                                                        m.clock.now().replace(year=2027)))
    await m.store.transaction(lambda tx: tx.members.save(member()))

    await m.drain()

    assert m.base.writes == []
    assert await m.backlog_waiting() == 1


# --- the import ---------------------------------------------------------------------------------------------------


def number_row(phone: str, message: str = "", consent: Consent | None = None) -> BaseNumberRow:
    return BaseNumberRow(row_id=f"rec{phone[-4:]}", phone=phone, message=message, consent=consent, created=CREATED)


def payment_row(phone: str, session: str, status: PaymentStatus = PaymentStatus.ACTIVE) -> BasePaymentRow:
    return BasePaymentRow(row_id=f"rec{session}", email="ada@example.org", phone=phone, tier="10", amount=10.0,
                          payment_type=PaymentType.MONTHLY, type_text="monthly", customer_id="cus_1",
                          subscription_id="sub_1", session_id=session, status=status, status_text="active",
                          created=CREATED)


async def run_import(base: FakeOrganiserBase, store: InMemoryStore, dry_run: bool = False):  # type: ignore[no-untyped-def]
    return await ImportFromBase(base, store, FixedClock(), ["LOVE"])(dry_run=dry_run)


async def test_imported_consent_follows_the_last_message_and_the_recorded_consent() -> None:
    base, store = FakeOrganiserBase(), InMemoryStore()
    base.number_rows = [
        number_row("+14155550001", "STOP"), number_row("+14155550002", "LOVE"),
        number_row("+14155550003", "LOVE", Consent.OPTED_OUT), number_row("+14155550004", "", Consent.SUBSCRIBED),
        number_row("+14155550005", "hello"), number_row("+14155550006", "UNSUB"),
    ]

    report = await run_import(base, store)

    consent = {phone: s.consent for phone, s in store.state.subscribers.items()}
    assert consent == {
        "+14155550001": Consent.OPTED_OUT, "+14155550002": Consent.SUBSCRIBED, "+14155550003": Consent.OPTED_OUT,
        "+14155550004": Consent.SUBSCRIBED, "+14155550005": Consent.NONE, "+14155550006": Consent.NONE,
    }
    assert {change.reason for _, change in store.state.history} == {"imported from Airtable"}
    assert (report.numbers, report.opted_out) == (6, 2)


async def test_an_active_payment_makes_a_member_with_its_stripe_ids() -> None:
    base, store = FakeOrganiserBase(), InMemoryStore()
    base.payment_rows = [payment_row(PHONE.e164, "cs_1")]

    await run_import(base, store)

    subscriber = store.subscriber(PHONE.e164)
    assert (subscriber.paid_tier, subscriber.stripe_customer_id, subscriber.stripe_subscription_id) == (
        "10", "cus_1", "sub_1")
    assert store.payment().status is PaymentStatus.ACTIVE


async def test_a_number_weft_already_holds_is_left_as_it_is() -> None:
    base, store = FakeOrganiserBase(), InMemoryStore()
    await store.transaction(lambda tx: tx.members.save(member(message="HELP")))
    base.number_rows = [number_row(PHONE.e164, "STOP")]

    report = await run_import(base, store)

    assert store.subscriber(PHONE.e164).last_message == "HELP"
    assert (report.numbers, report.already_in_weft) == (0, 1)


async def test_a_dry_run_saves_nothing_and_reports_the_same_counts() -> None:
    base, store = FakeOrganiserBase(), InMemoryStore()
    base.number_rows = [number_row("+14155550001", "STOP")]
    base.payment_rows = [payment_row(PHONE.e164, "cs_1")]

    dry = await run_import(base, store, dry_run=True)
    committed_before = dict(store.state.subscribers)
    real = await run_import(base, store)

    assert committed_before == {}
    assert (dry.numbers, dry.payments, dry.memberships) == (real.numbers, real.payments, real.memberships) == (
        2, 1, 1)


def _phones(tx: Transaction) -> list[str]:
    return sorted(tx.members.get_many([PHONE]))


async def test_a_malformed_or_repeated_number_is_reported_not_imported() -> None:
    base, store = FakeOrganiserBase(), InMemoryStore()
    base.number_rows = [number_row("415 555 0123", "LOVE"), number_row("+1415", "LOVE"),
                        number_row(PHONE.e164, "LOVE"), number_row(PHONE.e164, "STOP")]

    report = await run_import(base, store)

    assert store.state.subscribers == {}
    assert await store.transaction(_phones) == []
    assert len(report.problems) == 3
    assert any("more than one row" in p for p in report.problems)
