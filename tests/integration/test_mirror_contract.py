"""The mirror queue's part of the Store contract (copies for the organisers' base), against the in-memory fake and
the SQL store on SQLite and PostgreSQL, each built with the mirror on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.fakes import InMemoryStore
from tests.integration.conftest import _postgres_schema
from tests.integration.test_store_contract import (
    NOW,
    OTHER_PHONE,
    PHONE,
    A,
    B,
    later,
    lease,
    payment,
    subscriber,
)
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.sql.unit_of_work import SqlStore
from weft.application.unit_of_work import MirrorBacklog, MirrorChange, MirrorKind, Store, Transaction
from weft.domain.payment import PaymentStatus

NUMBER, PAYMENT = MirrorKind.NUMBER, MirrorKind.PAYMENT


def _sql(url: str, mirror: bool) -> Iterator[Store]:
    engine = create_engine(url)
    migrate(engine)
    store = SqlStore(engine, mirror=mirror)
    try:
        yield store
    finally:
        store.close()


def _stores(request: pytest.FixtureRequest, tmp_path: Path, mirror: bool) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore(mirror=mirror)
        return
    if request.param == "sqlite":
        yield from _sql(f"sqlite:///{tmp_path / 'weft.db'}", mirror)
        return
    base = os.environ.get("WEFT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("WEFT_TEST_POSTGRES_URL is not set")
    for url in _postgres_schema(base):
        yield from _sql(url, mirror)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from _stores(request, tmp_path, mirror=True)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def unmirrored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from _stores(request, tmp_path, mirror=False)


def _claim(store: Store, owner: str = A, limit: int = 10, at_seconds: int = 0):  # type: ignore[no-untyped-def]
    return store.transaction(lambda tx: tx.mirror.claim(lease(owner), later(at_seconds), limit))


def _save_both(tx: Transaction) -> None:
    tx.members.save(subscriber())
    tx.payments.save(payment("pay-1", session_id="cs_1"))


async def test_saving_a_number_or_a_payment_queues_its_copy_in_the_same_transaction(store: Store) -> None:
    await store.transaction(_save_both)

    claimed = await _claim(store)

    assert sorted((c.kind.value, c.key, c.version) for c in claimed) == [
        ("number", PHONE.e164, 1), ("payment", "pay-1", 1)]


async def test_a_store_without_the_mirror_queues_nothing(unmirrored: Store) -> None:
    await unmirrored.transaction(_save_both)

    assert await unmirrored.transaction(lambda tx: tx.mirror.backlog(NOW)) == MirrorBacklog(0, None, 0)


async def test_several_changes_to_one_record_wait_as_one_copy(store: Store) -> None:
    for seconds in (0, 1, 2):
        await store.transaction(lambda tx, s=seconds: tx.members.save(subscriber(updated_at=later(s))))
    await store.transaction(lambda tx: tx.members.save_many([subscriber(), subscriber(OTHER_PHONE)]))

    claimed = await _claim(store, at_seconds=5)

    assert sorted((c.key, c.version) for c in claimed) == [(PHONE.e164, 4), (OTHER_PHONE.e164, 1)]


async def test_a_work_that_fails_queues_no_copy(store: Store) -> None:
    def fail(tx: Transaction) -> None:
        tx.members.save(subscriber())
        raise RuntimeError("the unit of work failed")

    with pytest.raises(RuntimeError):
        await store.transaction(fail)

    assert (await store.transaction(lambda tx: tx.mirror.backlog(NOW))).waiting == 0


async def test_a_claimed_copy_is_held_by_its_worker_until_done(store: Store) -> None:
    await store.transaction(lambda tx: tx.members.save(subscriber()))
    assert len(await _claim(store, A)) == 1

    assert await _claim(store, B) == []


async def test_a_pushed_copy_is_forgotten(store: Store) -> None:
    await store.transaction(lambda tx: tx.members.save(subscriber()))
    claimed = await _claim(store)

    await store.transaction(lambda tx: tx.mirror.done(claimed, later(1)))

    assert await store.transaction(lambda tx: tx.mirror.backlog(later(1))) == MirrorBacklog(0, None, 0)
    assert await _claim(store, B, at_seconds=120) == []


async def test_a_record_changed_while_its_copy_was_pushed_is_pushed_again(store: Store) -> None:
    await store.transaction(lambda tx: tx.members.save(subscriber()))
    claimed = await _claim(store)
    await store.transaction(lambda tx: tx.members.save(subscriber(last_message="STOP", updated_at=later(1))))

    await store.transaction(lambda tx: tx.mirror.done(claimed, later(2)))

    again = await _claim(store, B, at_seconds=2)
    assert [(c.key, c.version, c.attempts) for c in again] == [(PHONE.e164, 2, 0)]


async def test_a_failed_copy_waits_until_it_is_due_and_counts_its_attempts(store: Store) -> None:
    await store.transaction(lambda tx: tx.payments.save(payment("pay-1", PaymentStatus.COMPLETED)))
    claimed = await _claim(store)

    await store.transaction(lambda tx: tx.mirror.retry(claimed, later(30), later(1), "Airtable failed (503)"))

    assert await _claim(store, B, at_seconds=29) == []
    backlog = await store.transaction(lambda tx: tx.mirror.backlog(later(29)))
    assert backlog == MirrorBacklog(1, NOW, 1, "Airtable failed (503)", later(1))
    (again,) = await _claim(store, B, at_seconds=30)
    assert (again.attempts, again.first_attempt_at) == (1, later(1))


async def test_a_copy_pushed_after_failing_clears_its_error(store: Store) -> None:
    await store.transaction(lambda tx: tx.payments.save(payment("pay-1", PaymentStatus.COMPLETED)))
    await store.transaction(lambda tx: tx.mirror.retry(
        tx.mirror.claim(lease(A), NOW, 10), later(30), later(1), "Airtable failed (503)"))
    await store.transaction(lambda tx: tx.members.save(subscriber()))

    await store.transaction(lambda tx: tx.mirror.done(tx.mirror.claim(lease(B), later(30), 10), later(31)))

    assert await store.transaction(lambda tx: tx.mirror.backlog(later(31))) == MirrorBacklog(0, None, 0)


async def test_queueing_everything_queues_each_number_and_payment_once(unmirrored: Store) -> None:
    await unmirrored.transaction(_save_both)
    await unmirrored.transaction(lambda tx: tx.members.save(subscriber(OTHER_PHONE)))

    queued = await unmirrored.transaction(lambda tx: tx.mirror.changed_all(later(1)))
    again = await unmirrored.transaction(lambda tx: tx.mirror.changed_all(later(2)))

    assert (queued, again) == (3, 3)
    claimed = await unmirrored.transaction(lambda tx: tx.mirror.claim(lease(A), later(3), 10))
    assert sorted((c.kind.value, c.key, c.version) for c in claimed) == [
        ("number", PHONE.e164, 2), ("number", OTHER_PHONE.e164, 2), ("payment", "pay-1", 2)]


async def test_a_lapsed_claim_lets_another_worker_push_the_copy(store: Store) -> None:
    await store.transaction(lambda tx: tx.members.save(subscriber()))
    await store.transaction(lambda tx: tx.mirror.claim(lease(A, seconds=20), NOW, 10))

    claimed = await store.transaction(lambda tx: tx.mirror.claim(lease(B), later(21), 10))

    assert [attrs.evolve(c) for c in claimed] == [MirrorChange(NUMBER, PHONE.e164, 1)]
