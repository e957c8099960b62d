from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from weft.adapters import sql_schema as t
from weft.adapters.sql_payments import audit_from_row, journey_from_row, payment_from_row
from weft.adapters.sql_rows import SqlTransaction, entry_from_row, subscriber_from_row
from weft.application.ports import OutboxEntry, Transaction
from weft.domain.journey import AuditEntry, Journey
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Subscriber

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_GROUP = 256
"""Most units of work committed together; bounds how long one fsync holds the others back."""


@attrs.define
class _Job:
    work: Callable[[Transaction], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class _UnitFailed(Exception):
    """A unit of work raised inside a group: the group's transaction was rolled back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class SqlStore:
    """The SQL store: writes from concurrent requests are group-committed by one writer thread.

    The units of a group run in one shared transaction; if one raises, the group is rolled back and rerun
    with each unit in its own SAVEPOINT, so the failing unit fails alone (units must therefore be safe to
    rerun after a rollback). Every caller resumes only after the COMMIT (one fsync) that includes its unit.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_writer()
        self._jobs.put(_Job(work, future, loop))
        return await asyncio.shield(future)

    def close(self) -> None:
        """Finish queued work, stop the writer thread and close the connections."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._jobs.put(None)
            writer.join(timeout=30)
        self._engine.dispose()

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="weft-sql-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        connection: sa.Connection | None = None
        while (group := self._next_group()) is not None:
            try:
                connection = connection or self._engine.connect().execution_options(weft_writer=True)
            except Exception as exc:  # database unreachable: fail this group now, try to connect for the next
                log.exception("the store cannot connect")
                self._settle_all(group, [(False, exc)] * len(group))
                continue
            if not self._commit_group(connection, group):
                connection.close()
                connection = None  # a broken connection is replaced, not reused
        if connection is not None:
            connection.close()

    @staticmethod
    def _settle_all(group: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        for job, (ok, value) in zip(group, outcomes, strict=True):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, ok, value)
            except RuntimeError:  # the caller's event loop has closed; nobody is waiting any more
                pass

    def _next_group(self) -> list[_Job] | None:
        first = self._jobs.get()
        if first is None:
            return None
        group = [first]
        while len(group) < MAX_GROUP:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)
                break
            group.append(job)
        return group

    def _commit_group(self, connection: sa.Connection, group: list[_Job]) -> bool:
        """Run and settle the group; False when the connection failed and should be replaced."""
        healthy = True
        try:
            try:
                outcomes = self._run_plainly(connection, group)
            except _UnitFailed as failed:
                # Rolled back: a lone unit just failed; a group reruns with each unit in its own savepoint.
                outcomes = [(False, failed.error)] if len(group) == 1 else self._run_isolated(connection, group)
        except Exception as exc:  # the COMMIT itself failed: nothing in the group is durable
            log.exception("group commit of %d units failed", len(group))
            outcomes, healthy = [(False, exc)] * len(group), False
        self._settle_all(group, outcomes)
        return healthy

    @staticmethod
    def _run_plainly(connection: sa.Connection, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Every unit in one transaction without savepoints; _UnitFailed (after rollback) if any unit raises."""
        with connection.begin():
            tx = SqlTransaction(connection)
            try:
                return [(True, job.work(tx)) for job in group]
            except Exception as exc:
                raise _UnitFailed(exc) from exc

    def _run_isolated(self, connection: sa.Connection, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Every unit in its own SAVEPOINT of one transaction, so a failing unit rolls back alone."""
        with connection.begin():
            tx = SqlTransaction(connection)
            return [self._run_one(connection, tx, job) for job in group]

    @staticmethod
    def _run_one(connection: sa.Connection, tx: SqlTransaction, job: _Job) -> tuple[bool, Any]:
        nested = connection.begin_nested()
        try:
            value = job.work(tx)
        except Exception as exc:
            nested.rollback()
            return False, exc
        nested.commit()
        return True, value

    async def subscribers(self) -> list[Subscriber]:
        return await asyncio.to_thread(self._read, _subscribers)

    async def subscriber_detail(self, phone: PhoneNumber) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read, lambda c: _detail(c, phone))

    async def outbox(self, limit: int = 200) -> list[OutboxEntry]:
        return await asyncio.to_thread(self._read, lambda c: _outbox(c, limit))

    async def payments(self, limit: int = 200) -> list[Payment]:
        return await asyncio.to_thread(self._read, lambda c: _payments(c, limit))

    async def payment_for_session(self, session_id: str) -> Payment | None:
        found = await asyncio.to_thread(self._read, lambda c: _payments(c, 1, session_id))
        return found[0] if found else None

    async def journeys(self, failed_only: bool = False, limit: int = 200) -> list[Journey]:
        return await asyncio.to_thread(self._read, lambda c: _journeys(c, limit, failed_only))

    async def audit_log(self, action: str | None, since: datetime | None, limit: int = 500) -> list[AuditEntry]:
        return await asyncio.to_thread(self._read, lambda c: _audit(c, action, since, limit))

    def _read(self, query: Callable[[sa.Connection], T]) -> T:
        with self._engine.connect() as connection:
            return query(connection)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _subscribers(connection: sa.Connection) -> list[Subscriber]:
    rows = connection.execute(sa.select(t.subscribers).order_by(t.subscribers.c.created_at.desc()))
    return [subscriber_from_row(row) for row in rows]


def _outbox(connection: sa.Connection, limit: int, phone: str | None = None) -> list[OutboxEntry]:
    query = sa.select(t.outbox).order_by(t.outbox.c.created_at.desc(), t.outbox.c.id).limit(limit)
    if phone is not None:
        query = query.where(t.outbox.c.phone == phone)
    return [entry_from_row(row) for row in connection.execute(query)]


def _payments(connection: sa.Connection, limit: int, session_id: str | None = None) -> list[Payment]:
    query = sa.select(t.payments).order_by(t.payments.c.created_at.desc(), t.payments.c.id).limit(limit)
    if session_id is not None:
        query = query.where(t.payments.c.checkout_session_id == session_id)
    return [payment_from_row(row) for row in connection.execute(query)]


def _journeys(connection: sa.Connection, limit: int, failed_only: bool) -> list[Journey]:
    query = sa.select(t.journeys).order_by(t.journeys.c.started_at.desc(), t.journeys.c.id).limit(limit)
    if failed_only:
        query = query.where(t.journeys.c.has_failed_step.is_(True))
    return [journey_from_row(row) for row in connection.execute(query)]


def _audit(connection: sa.Connection, action: str | None, since: datetime | None, limit: int) -> list[AuditEntry]:
    query = sa.select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
    if action:
        query = query.where(t.audit_log.c.action == action)
    if since is not None:
        query = query.where(t.audit_log.c.at >= since)
    return [audit_from_row(row) for row in connection.execute(query)]


def _detail(connection: sa.Connection, phone: PhoneNumber) -> dict[str, Any] | None:
    row = connection.execute(sa.select(t.subscribers).where(t.subscribers.c.phone == phone.e164)).first()
    if row is None:
        return None
    history = connection.execute(
        sa.select(t.consent_history).where(t.consent_history.c.phone == phone.e164).order_by(t.consent_history.c.id)
    )
    inbound = connection.execute(
        sa.select(t.inbound_messages)
        .where(t.inbound_messages.c.phone == phone.e164)
        .order_by(t.inbound_messages.c.received_at)
    )
    return {
        "subscriber": subscriber_from_row(row),
        "consent_history": [dict(r._mapping) for r in history],
        "inbound": [dict(r._mapping) for r in inbound],
        "outbound": list(reversed(_outbox(connection, 1000, phone.e164))),
    }
