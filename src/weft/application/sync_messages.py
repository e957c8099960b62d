from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

import attrs

from weft.application.handle_inbound_sms import Applied, ApplyKeywords, InboundWakeups
from weft.application.ports import Clock, HistoryPage, MessageHistory
from weft.application.unit_of_work import Store, Transaction
from weft.application.work_queue import LeaseSettings

log = logging.getLogger(__name__)


@attrs.frozen
class SyncSettings:
    name: str = "bird"
    reply_window: timedelta = timedelta(seconds=600)
    """A keyword text found by the sync gets its reply only when younger than this."""
    overlap: timedelta = timedelta(minutes=5)
    """Each run reads again from a little before where the last one stopped: a message the provider stored late
    is still found (each is recorded once, by its id)."""
    max_pages: int = 1000


@attrs.frozen
class SyncSummary:
    fetched: int = 0
    new_inbound: int = 0
    new_outbound: int = 0
    keyword_changes: int = 0
    pages: int = 0
    since: datetime | None = None
    cursor: datetime | None = None
    busy: bool = False
    """Another process holds the sync: nothing was read."""

    def as_json(self) -> dict[str, object]:
        return {
            "fetched": self.fetched, "new_inbound": self.new_inbound, "new_outbound": self.new_outbound,
            "keyword_changes": self.keyword_changes, "pages": self.pages,
            "since": self.since.isoformat() if self.since else None,
            "cursor": self.cursor.isoformat() if self.cursor else None, "busy": self.busy,
        }


class SyncProviderMessages:
    """Catch up with texts that reached the provider but not Weft (handled by the provider's own automations, or a
    webhook that was lost): page through the provider's message history from the stored cursor, and record each
    message once, by the provider's id, as the webhook would.

    Incoming texts are applied as any text is (a STOP only the sync saw still opts the number out), but a keyword
    reply goes out only when the text is younger than the reply window. Texts the provider's automations sent are
    recorded in their number's message history. One process at a time runs a provider's sync (a named lease).
    """

    def __init__(self, history: MessageHistory, store: Store, clock: Clock, apply: ApplyKeywords,
                 wakeups: InboundWakeups, lease: LeaseSettings, settings: SyncSettings) -> None:
        self._history, self._store, self._clock, self._apply = history, store, clock, apply
        self._wakeups, self._lease, self._settings = wakeups, lease, settings
        self._cursor_name = f"sync:{settings.name}"

    async def __call__(self) -> SyncSummary:
        now = self._clock.now()
        held, stored = await self._store.transaction(lambda tx: self._start(tx, now))
        if not held:
            return SyncSummary(busy=True)
        try:
            summary = await self._read(datetime.fromisoformat(stored) if stored else None)
        finally:
            owner = self._lease.owner
            await self._store.transaction(lambda tx: tx.leases.release(self._cursor_name, owner))
        log.info("%s sync: %d fetched, %d new inbound, %d new outbound, %d keyword changes", self._settings.name,
                 summary.fetched, summary.new_inbound, summary.new_outbound, summary.keyword_changes)
        return summary

    async def _read(self, cursor: datetime | None) -> SyncSummary:
        since = cursor - self._settings.overlap if cursor else None
        summary = SyncSummary(since=since, cursor=cursor)
        token: str | None = None
        for _ in range(self._settings.max_pages):
            page = await self._history.page(since, token)
            applied, new_outbound = await self._store.transaction(partial(self._record, page=page))
            self._wakeups.after(applied)
            newest = max(filter(None, (summary.cursor, page.newest)), default=None)
            summary = attrs.evolve(
                summary, fetched=summary.fetched + page.fetched, new_inbound=summary.new_inbound + applied.texts,
                new_outbound=summary.new_outbound + new_outbound,
                keyword_changes=summary.keyword_changes + applied.keywords, pages=summary.pages + 1, cursor=newest)
            token = page.next_page
            if not token:
                break
        else:
            log.warning("%s sync stopped after %d pages; the next run starts from the newest message read, so "
                        "older unread ones may be missed if the provider lists newest first", self._settings.name,
                        self._settings.max_pages)
        if summary.cursor is not None and summary.cursor != cursor:
            at, mark = self._clock.now(), summary.cursor.isoformat()
            await self._store.transaction(lambda tx: tx.cursors.set(self._cursor_name, mark, at))
        return summary

    def _start(self, tx: Transaction, now: datetime) -> tuple[bool, str | None]:
        lease = self._lease.lease(now)
        if not tx.leases.take(self._cursor_name, lease.owner, now, lease.until):
            return False, None
        return True, tx.cursors.get(self._cursor_name)

    def _record(self, tx: Transaction, page: HistoryPage) -> tuple[Applied, int]:
        now = self._clock.now()
        new = [m for m in page.inbound if tx.inbound.record(m, m.received_at or now)]
        applied = Applied()
        if new:
            phones = sorted({m.sender for m in new}, key=lambda p: p.e164)
            tx.inbound.hold(phones, wait=True)  # after any of these numbers' texts a worker is applying
            applied = self._apply(tx, tx.inbound.pending(phones), now, late_before=now - self._settings.reply_window)
            applied = attrs.evolve(applied, texts=len(new))
        return applied, tx.outbox.record_provider_sent(page.sent, now)
