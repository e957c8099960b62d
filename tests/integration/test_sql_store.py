from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.adapters.sql.unit_of_work import SqlStore
from weft.application.unit_of_work import StoreError, Transaction
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _message(number: int) -> InboundSms:
    return InboundSms(f"m{number}", PhoneNumber("+14155550123"), "hi")


def _recorder(number: int) -> Callable[[Transaction], bool]:
    return lambda tx: tx.inbound.record(_message(number), AT)


async def test_the_writer_survives_an_unreachable_database_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    engine = create_engine(f"sqlite:///{folder / 'weft.db'}")
    store = SqlStore(engine)
    try:
        with pytest.raises(StoreError, match="unable to open database file"):
            await store.transaction(_recorder(1))
        folder.mkdir()
        migrate(engine)
        assert await store.transaction(_recorder(2)) is True
    finally:
        store.close()


async def test_a_failing_unit_rolls_back_alone_while_its_group_commits(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'weft.db'}")
    store = SqlStore(engine)
    migrate(engine)

    def failing(tx: Transaction) -> None:
        tx.inbound.record(_message(99), AT)
        raise RuntimeError("this unit fails")

    try:
        results = await asyncio.gather(
            *(store.transaction(_recorder(n)) for n in range(5)), store.transaction(failing), return_exceptions=True
        )
        assert results[:5] == [True] * 5 and isinstance(results[5], RuntimeError)
        assert [await store.transaction(_recorder(n)) for n in (0, 99)] == [False, True]
    finally:
        store.close()


async def test_on_postgresql_a_number_one_transaction_holds_is_left_out_by_another(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: every transaction holds every number")
    engine = create_engine(database_url)
    migrate(engine)
    engine.dispose()
    first, second = SqlStore(create_engine(database_url)), SqlStore(create_engine(database_url))
    phone, other = PhoneNumber("+14155550123"), PhoneNumber("+14155550199")
    holding, checked = threading.Event(), threading.Event()

    def hold_and_wait(tx: Transaction) -> list[PhoneNumber]:
        held = tx.inbound.hold([phone], wait=False)
        holding.set()
        checked.wait(timeout=10)
        return held

    def hold_after(tx: Transaction) -> list[PhoneNumber]:
        holding.wait(timeout=10)
        held = tx.inbound.hold([other, phone], wait=False)
        checked.set()
        return held

    try:
        assert await asyncio.gather(first.transaction(hold_and_wait), second.transaction(hold_after)) == [
            [phone], [other]]
        assert await second.transaction(lambda tx: tx.inbound.hold([phone], wait=False)) == [phone]  # released
    finally:
        first.close()
        second.close()
