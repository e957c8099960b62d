"""The alerts' part of the Store and Views contract (alert state, and the reads the alert check and /metrics make),
against the in-memory fake and the SQL store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from tests.fakes import FakeEmailSender, FixedClock, InMemoryStore, InMemoryViews
from tests.integration.conftest import _postgres_schema
from tests.integration.test_store_contract import NOW, Backend, care, enqueue, later, lease, sms
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.sql.unit_of_work import SqlStore
from weft.adapters.sql.views import SqlViews
from weft.application.alerts import AlertSettings, CheckAlerts
from weft.application.unit_of_work import Store, Transaction
from weft.domain.alerts import Alert, AlertKind
from weft.domain.messages import DeliveryReceipt, DeliveryState, DeliveryStatus, Lane, MessageKind


@attrs.frozen
class Database:
    """A backend, and a second handle on the same database as another process would hold it."""

    first: Backend
    second: Backend


def _sql(url: str) -> Iterator[Database]:
    engines = [create_engine(url), create_engine(url)]
    migrate(engines[0])
    stores = [SqlStore(engine) for engine in engines]
    try:
        yield Database(*(Backend(s, SqlViews(e, FixedClock(NOW))) for s, e in zip(stores, engines, strict=True)))
    finally:
        for store in stores:
            store.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "memory":
        memory = InMemoryStore()
        backend = Backend(memory, InMemoryViews(memory, FixedClock(NOW)))
        yield Database(backend, backend)
        return
    if request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'weft.db'}")
        return
    base = os.environ.get("WEFT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("WEFT_TEST_POSTGRES_URL is not set")
    for url in _postgres_schema(base):
        yield from _sql(url)


@pytest.fixture
def backend(database: Database) -> Backend:
    return database.first


async def test_an_alert_never_saved_reads_as_inactive(backend: Backend) -> None:
    alert = await backend.store.transaction(lambda tx: tx.alerts.get(AlertKind.DELIVERY_RATE))

    assert alert == Alert(AlertKind.DELIVERY_RATE)
    assert await backend.views.active_alerts() == []


async def test_a_saved_alert_reads_back_with_every_field(backend: Backend) -> None:
    saved = Alert(AlertKind.CAMPAIGN_STALLED, active=True, summary="campaign care-2026-11 has not moved",
                  since=NOW, checked_at=later(60), notified_at=later(30),
                  progress={"care-2026-11": (1234, later(-900)), "care-2026-10": (0, NOW)})
    await backend.store.transaction(lambda tx: tx.alerts.save(saved))

    assert await backend.store.transaction(lambda tx: tx.alerts.get(AlertKind.CAMPAIGN_STALLED)) == saved
    assert await backend.views.active_alerts() == [saved]


async def test_saving_an_alert_again_replaces_it(backend: Backend) -> None:
    first = Alert(AlertKind.DELIVERY_RATE, active=True, summary="low", since=NOW, progress={"a": (1, NOW)})
    cleared = Alert(AlertKind.DELIVERY_RATE, checked_at=later(60), notified_at=NOW)
    await backend.store.transaction(lambda tx: tx.alerts.save(first))
    await backend.store.transaction(lambda tx: tx.alerts.save(cleared))

    assert await backend.store.transaction(lambda tx: tx.alerts.get(AlertKind.DELIVERY_RATE)) == cleared
    assert await backend.views.active_alerts() == []


async def test_active_alerts_list_only_active_ones_the_longest_standing_first(backend: Backend) -> None:
    older = Alert(AlertKind.CAMPAIGN_STALLED, active=True, summary="stalled", since=NOW)
    newer = Alert(AlertKind.DELIVERY_RATE, active=True, summary="low", since=later(60))
    await backend.store.transaction(lambda tx: [tx.alerts.save(newer), tx.alerts.save(older)])

    assert [a.kind for a in await backend.views.active_alerts()] == [AlertKind.CAMPAIGN_STALLED,
                                                                      AlertKind.DELIVERY_RATE]


async def test_campaign_sendable_counts_due_and_retrying_texts_not_those_held_for_later(backend: Backend) -> None:
    store, views = backend.store, backend.views
    await enqueue(store, care("due"), care("due-too"), care("other", campaign_id="care-2026-10"), care("sent"))
    await enqueue(store, care("quiet"), care("held-after-a-failure"), due=later(3600))
    await enqueue(store, care("retrying"), due=later(60))

    def settle(tx: Transaction) -> None:
        tried = [tx.outbox.get(key) for key in ("retrying", "held-after-a-failure")]
        tx.outbox.record([attrs.evolve(e, attempts=1, first_attempt_at=NOW) for e in tried if e is not None])
        sent = tx.outbox.get("sent")
        assert sent is not None
        tx.outbox.record([attrs.evolve(sent, status=DeliveryStatus.SENT, attempts=1, sent_at=NOW,
                                       next_attempt_at=None)])

    await store.transaction(settle)

    assert await views.campaign_sendable("care-2026-11", NOW, later(300)) == 3
    assert await views.campaign_sendable("care-2026-11", NOW, later(30)) == 2
    assert await views.campaign_sendable("care-2026-11", later(3600), later(3900)) == 5
    assert await views.campaign_sendable("care-2026-09", NOW, later(300)) == 0


async def test_sms_outcome_counts_count_the_texts_queued_since_by_where_they_stand(backend: Backend) -> None:
    store = backend.store
    await enqueue(store, sms("pending"), sms("sent"), sms("delivered"), sms("undelivered"), sms("failed"),
                  sms("suppressed"))

    def settle(tx: Transaction) -> None:
        outcomes = {"sent": DeliveryStatus.SENT, "delivered": DeliveryStatus.SENT, "undelivered": DeliveryStatus.SENT,
                    "failed": DeliveryStatus.FAILED, "suppressed": DeliveryStatus.SUPPRESSED}
        entries = [tx.outbox.get(key) for key in outcomes]
        tx.outbox.record([attrs.evolve(e, status=outcomes[e.message.id], provider_id=f"p-{e.message.id}")
                          for e in entries if e is not None])
        tx.outbox.apply_receipts([DeliveryReceipt("p-delivered", DeliveryState.DELIVERED),
                                  DeliveryReceipt("p-undelivered", DeliveryState.UNDELIVERED)], NOW)

    await store.transaction(settle)

    assert await backend.views.sms_outcome_counts(NOW) == {"pending": 1, "sent": 1, "delivered": 1, "failed": 2}
    assert await backend.views.sms_outcome_counts(later(1)) == {"pending": 0, "sent": 0, "delivered": 0, "failed": 0}


async def test_queue_depth_counts_pending_texts_per_lane(backend: Backend) -> None:
    store = backend.store
    await enqueue(store, sms("reply"), sms("join", MessageKind.JOIN_LINK), care("care-1"), care("care-2"))
    await enqueue(store, care("later"), due=later(3600))
    claimed = await store.transaction(lambda tx: tx.outbox.claim(Lane.PRIORITY, lease("a"), NOW, 1))
    await store.transaction(lambda tx: tx.outbox.record([attrs.evolve(claimed[0], status=DeliveryStatus.SENT)]))

    assert await backend.views.queue_depth() == {Lane.PRIORITY: 1, Lane.BROADCAST: 3}


async def test_two_processes_checking_at_once_send_one_email(database: Database) -> None:
    await _failing_hour(database.first.store)
    emails = FakeEmailSender()
    checks = [CheckAlerts(b.views, emails, FixedClock(NOW), AlertSettings(email="ops@example.org"), b.store)
              for b in (database.first, database.second)]

    results = await asyncio.gather(*(check() for check in checks))

    assert [[a.kind for a in active] for active in results] == [[AlertKind.DELIVERY_RATE]] * 2
    assert [e.to for e in emails.sent] == ["ops@example.org"]


async def test_a_restarted_process_does_not_notify_again_within_the_hour(database: Database) -> None:
    await _failing_hour(database.first.store)
    emails = FakeEmailSender()
    settings = AlertSettings(email="ops@example.org")
    first, second = database.first, database.second
    await CheckAlerts(first.views, emails, FixedClock(NOW), settings, first.store)()
    await CheckAlerts(second.views, emails, FixedClock(NOW + timedelta(minutes=59)), settings, second.store)()

    assert len(emails.sent) == 1


async def _failing_hour(store: Store) -> None:
    await enqueue(store, *(sms(f"m{i}") for i in range(20)))

    def fail(tx: Transaction) -> None:
        entries = [tx.outbox.get(f"m{i}") for i in range(20)]
        tx.outbox.record([attrs.evolve(e, status=DeliveryStatus.FAILED, attempts=1) for e in entries if e])

    await store.transaction(fail)

