"""The overview's figures and the delivery charts' buckets, counted by SQL on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa

from weft.adapters.sql.dashboard import SqlDashboard
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.sql.unit_of_work import SqlStore
from weft.application.dashboard import DayCount, DeliveryBucket
from weft.application.unit_of_work import Transaction
from weft.domain.journey import Journey, Step
from weft.domain.messages import DeliveryReceipt, DeliveryState, DeliveryStatus, MessageKind, OutboundSms
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Subscriber
from weft.domain.tiers import PaymentType

NOW = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def member(n: int, days_ago: int, consent: Consent = Consent.SUBSCRIBED, tier: str | None = None) -> Subscriber:
    at = NOW - timedelta(days=days_ago)
    subscriber = Subscriber.first_contact(PhoneNumber(f"+1415555{n:04d}"), at)
    subscriber.consent = consent
    if tier is not None:
        subscriber = attrs.evolve(subscriber, membership=subscriber.membership.PAID, paid_tier=tier)
    return subscriber


def payment(n: int, status: PaymentStatus, cents: int, kind: PaymentType) -> Payment:
    return Payment(id=f"pay-{n}", phone=PhoneNumber(f"+1415555{n:04d}"), email="a@example.org", tier="10",
                   amount_cents=cents, payment_type=kind, created_at=NOW, updated_at=NOW, status=status)


def seed(tx: Transaction) -> None:
    tx.members.save_many([member(1, 0), member(2, 1, tier="10"), member(3, 1, tier="10"), member(4, 40, tier="25"),
                          member(5, 2, Consent.OPTED_OUT)])
    opted = tx.members.get(PhoneNumber("+14155550005"))
    assert opted is not None
    opted.consent = Consent.NONE
    opted.opt_out(NOW - timedelta(days=2), "stop-1")
    tx.members.save(opted)
    tx.payments.save(payment(2, PaymentStatus.ACTIVE, 1000, PaymentType.MONTHLY))
    tx.payments.save(payment(3, PaymentStatus.ACTIVE, 1000, PaymentType.MONTHLY))
    tx.payments.save(payment(4, PaymentStatus.COMPLETED, 2500, PaymentType.ONE_TIME))
    failed = Journey(id="j-1", payment_id="pay-2", started_at=NOW)
    failed.fail(Step.EMAIL_SENT, NOW, "SMTP timed out")
    tx.journeys.save(failed)


async def test_the_member_figures_count_tiers_consent_revenue_and_days(engine: sa.Engine) -> None:
    store = SqlStore(engine)
    try:
        await store.transaction(seed)
    finally:
        store.close()

    figures = await SqlDashboard(engine).member_figures(NOW - timedelta(days=29), NOW)

    assert (figures.members, figures.free, figures.paid_by_tier, figures.opted_out) == (5, 2, {"10": 2, "25": 1}, 1)
    assert figures.monthly_revenue_cents == 2000
    assert figures.failed_journeys == 1
    assert len(figures.joins) == 30 and figures.joins[0].day == date(2026, 11, 4)
    assert [d for d in figures.joins if d.count] == [DayCount(date(2026, 12, 1), 1), DayCount(date(2026, 12, 2), 2),
                                                     DayCount(date(2026, 12, 3), 1)]
    assert [d for d in figures.opt_outs if d.count] == [DayCount(date(2026, 12, 1), 1)]


def queue(tx: Transaction, key: str, at: datetime) -> None:
    tx.outbox.enqueue_once(OutboundSms(id=key, to=PhoneNumber("+14155550001"), text="hi", kind=MessageKind.HELP),
                           at, at)


async def test_delivery_buckets_follow_each_texts_outcome_per_hour(engine: sa.Engine) -> None:
    store = SqlStore(engine)
    try:
        for key, minutes in (("a", 10), ("b", 15), ("c", 70), ("d", 75)):
            await store.transaction(lambda tx, k=key, m=minutes: queue(tx, k, NOW - timedelta(minutes=m)))
        await store.transaction(lambda tx: _send(tx, ["a", "b", "c"]))
        await store.transaction(lambda tx: tx.outbox.apply_receipts(
            [DeliveryReceipt("prov-a", DeliveryState.DELIVERED, NOW), DeliveryReceipt("prov-c", DeliveryState.FAILED,
                                                                                      NOW, "30007")], NOW))
    finally:
        store.close()

    hours = await SqlDashboard(engine).delivery(NOW - timedelta(hours=2), NOW, hourly=True)

    assert [b.start.hour for b in hours] == [13, 14, 15]
    assert hours[1] == DeliveryBucket(hours[1].start, pending=1, failed=1)
    assert hours[2] == DeliveryBucket(hours[2].start, sent=1, delivered=1)
    assert hours[2].success_rate == 1.0 and hours[1].success_rate == 0.0 and hours[0].success_rate is None
    days = await SqlDashboard(engine).delivery(NOW - timedelta(days=2), NOW, hourly=False)
    assert [(b.start.day, b.sent + b.delivered + b.failed + b.pending) for b in days] == [(1, 0), (2, 0), (3, 4)]


def _send(tx: Transaction, keys: list[str]) -> None:
    for key in keys:
        entry = tx.outbox.get(key)
        assert entry is not None
        tx.outbox.record([attrs.evolve(entry, status=DeliveryStatus.SENT, provider_id=f"prov-{key}", sent_at=NOW,
                                       attempts=1)])


async def test_emails_count_by_where_each_journeys_email_stands(engine: sa.Engine) -> None:
    store = SqlStore(engine)
    try:
        await store.transaction(seed)  # one journey whose email failed for good

        def more(tx: Transaction) -> None:
            sent = Journey(id="j-2", payment_id="pay-3", started_at=NOW)
            sent.done(Step.EMAIL_SENT, NOW)
            tx.journeys.save(sent)
            tx.journeys.save(Journey(id="j-3", payment_id="pay-4", started_at=NOW))  # email not tried yet

        await store.transaction(more)
    finally:
        store.close()

    emails = await SqlDashboard(engine).emails(NOW - timedelta(hours=24))

    assert (emails.sent, emails.failed, emails.pending) == (1, 1, 1)
    assert emails.success_rate == 0.5
