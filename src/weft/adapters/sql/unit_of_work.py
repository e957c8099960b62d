from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from weft.adapters.sql.alerts import SqlAlerts
from weft.adapters.sql.campaigns import SqlCampaigns
from weft.adapters.sql.journeys import SqlJourneys
from weft.adapters.sql.leases import SqlLeases
from weft.adapters.sql.members import SqlInbound, SqlMembers
from weft.adapters.sql.mirror import SqlMirrorQueue
from weft.adapters.sql.outbox import SqlCursors, SqlOutbox
from weft.adapters.sql.payments import SqlAudit, SqlCancellations, SqlEvents, SqlPayments
from weft.adapters.sql.received_events import SqlReceivedEvents
from weft.application.unit_of_work import StoreError, Transaction


class SqlTransaction:
    """The Transaction port over one SQLAlchemy connection inside an open transaction; each repository is made
    when first used (most units of work touch two or three). With `mirror`, every saved number and payment also
    queues its copy for the organisers' base, in the same transaction."""

    def __init__(self, connection: sa.Connection, mirror: bool = False) -> None:
        self._c = connection
        self._mirrored = mirror

    @cached_property
    def members(self) -> SqlMembers:
        return SqlMembers(self._c, self.mirror if self._mirrored else None)

    @cached_property
    def inbound(self) -> SqlInbound:
        return SqlInbound(self._c)

    @cached_property
    def payments(self) -> SqlPayments:
        return SqlPayments(self._c, self.mirror if self._mirrored else None)

    @cached_property
    def events(self) -> SqlEvents:
        return SqlEvents(self._c)

    @cached_property
    def received_events(self) -> SqlReceivedEvents:
        return SqlReceivedEvents(self._c)

    @cached_property
    def audit(self) -> SqlAudit:
        return SqlAudit(self._c)

    @cached_property
    def journeys(self) -> SqlJourneys:
        return SqlJourneys(self._c)

    @cached_property
    def cancellations(self) -> SqlCancellations:
        return SqlCancellations(self._c)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self._c)

    @cached_property
    def campaigns(self) -> SqlCampaigns:
        return SqlCampaigns(self._c)

    @cached_property
    def leases(self) -> SqlLeases:
        return SqlLeases(self._c)

    @cached_property
    def cursors(self) -> SqlCursors:
        return SqlCursors(self._c)

    @cached_property
    def mirror(self) -> SqlMirrorQueue:
        return SqlMirrorQueue(self._c)

    @cached_property
    def alerts(self) -> SqlAlerts:
        return SqlAlerts(self._c)


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

    def __init__(self, engine: sa.Engine, mirror: bool = False) -> None:
        self._engine = engine
        self._mirror = mirror
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_writer()
        self._jobs.put(_Job(work, future, loop))
        try:
            return await asyncio.shield(future)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:  # lost connection, deadlock, failed commit
            raise StoreError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

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
        """Resume every caller of the group: one hand-off per event loop (each wakes that loop through its
        self-pipe), not one per unit."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, (ok, value) in zip(group, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_each, settled)
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

    def _run_plainly(self, connection: sa.Connection, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Every unit in one transaction without savepoints; _UnitFailed (after rollback) if any unit raises."""
        with connection.begin():
            tx = SqlTransaction(connection, self._mirror)
            try:
                return [(True, job.work(tx)) for job in group]
            except Exception as exc:
                raise _UnitFailed(exc) from exc

    def _run_isolated(self, connection: sa.Connection, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Every unit in its own SAVEPOINT of one transaction, so a failing unit rolls back alone."""
        with connection.begin():
            tx = SqlTransaction(connection, self._mirror)
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


def _settle_each(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
