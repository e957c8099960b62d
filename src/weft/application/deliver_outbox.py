from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

from weft.application.journey_steps import report_sms_outcome
from weft.application.pacing import Pacer
from weft.application.phone_numbers import time_zones
from weft.application.ports import Clock, SmsSender
from weft.application.unit_of_work import Lease, OutboxEntry, Store, Transaction
from weft.application.views import Views
from weft.application.work_queue import RetryPolicy
from weft.domain.messages import DeliveryStatus, Lane, Lookup, SendResult
from weft.domain.phone import PhoneNumber
from weft.domain.quiet_hours import QuietHours
from weft.domain.segments import sms_segments
from weft.domain.subscriber import Subscriber

log = logging.getLogger(__name__)

BROADCAST_LEASE = "sms-broadcast"
"""Only the instance holding this lease sends the broadcast lane, so the configured pace holds across instances."""


@attrs.frozen
class SendSettings:
    quiet_hours: QuietHours = QuietHours.parse("21:00-09:00")
    time_zone: str = "UTC"
    """Where a day starts for the daily cap, and the quiet-hours zone of a number whose zone is unknown."""
    daily_cap: int | None = None
    """Most messages a day; reached, the broadcast lane waits for the next day (answers and journeys still go)."""
    max_batch: int = 100
    """Most texts claimed at once: a claim is one unit of the single SQL writer, and a webhook's commit may wait
    behind it."""
    stale_claim_seconds: float = 2.0
    """A claimed message that waited longer than this for the pace has its consent and quiet hours read again
    before it is sent, so an opt-out always wins."""
    lookup_retry_seconds: float = 30.0
    consent_poll_seconds: float = 0.02
    """How stale the sender's view of "has any consent changed since this text was claimed" may be."""


@attrs.frozen
class Claimed:
    entry: OutboxEntry
    claimed_at: float
    consent_version: int
    """The consent history as it stood when consent was checked at the claim."""


class ConsentWatch:
    """Which numbers' consent changed since a given version. The consent history past what was read last is read
    at most every `seconds` however many sends ask, so an opt-out that lands while a text waits in the sender's
    hands is seen before the text goes, and only texts to a number that changed are checked again."""

    PAGE = 1000

    def __init__(self, views: Views, monotonic: Callable[[], float], seconds: float, remember: int = 10_000) -> None:
        self._views, self._monotonic, self._seconds, self._remember = views, monotonic, seconds, remember
        self._latest: dict[str, int] = {}
        """Number -> version of its latest change read."""
        self._seen: int | None = None
        self._floor = 0
        """Changes up to this version are not remembered: a text claimed before it is checked again."""
        self._read_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None

    async def changed_since(self, version: int, phone: str) -> bool:
        if self._monotonic() - self._read_at >= self._seconds:
            await self._refresh()
        return version < self._floor or self._latest.get(phone, 0) > version

    async def _refresh(self) -> None:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
            self._read_at = self._monotonic()
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        if self._seen is None:  # the whole history before now is not needed: texts claimed earlier check again
            self._seen = self._floor = await self._views.consent_version()
            return
        while changes := await self._views.consent_changes(self._seen, self.PAGE):
            self._latest.update((phone, version) for version, phone in changes)
            self._seen = changes[-1][0]
            if len(changes) < self.PAGE:
                break
        if len(self._latest) > self._remember:
            self._latest.clear()
            self._floor = self._seen


@attrs.frozen
class Delivery:
    """What happened to one claimed message: the provider's answer, or None when it was not attempted."""

    entry: OutboxEntry
    at: datetime
    result: SendResult | None = None
    retry_at: datetime | None = None
    possible_duplicate: bool = False
    held_back: OutboxEntry | None = None
    """Checked again after a long wait for the pace and not sent (consent changed, quiet hours began): as recorded."""


class DeliverOutbox:
    """The send pipeline for one lane: claim due messages (consent, expiry and quiet hours checked again), pace
    them, hand them to the provider, and record each outcome; a message left in doubt by a crash is looked up at
    the provider before it is sent again."""

    def __init__(self, lane: Lane, sms: SmsSender, pacer: Pacer, store: Store, views: Views, clock: Clock,
                 policy: RetryPolicy, settings: SendSettings, monotonic: Callable[[], float] = time.monotonic,
                 on_journey: Callable[[], None] = lambda: None) -> None:
        self.name = f"outbox-{lane.name.lower()}"
        self._lane, self._sms, self._pacer, self._store, self._clock = lane, sms, pacer, store, clock
        self._consent = ConsentWatch(views, monotonic, settings.consent_poll_seconds)
        self._policy, self._settings, self._monotonic, self._on_journey = policy, settings, monotonic, on_journey
        self._zone = ZoneInfo(settings.time_zone)

    def batch_size(self) -> int:
        if self._pacer.paused_for(self._lane) > 0:
            return 0
        rate = self._pacer.rate
        # About a second of sending at a time: a claim is never held long before its send.
        return self._settings.max_batch if rate is None else max(1, min(self._settings.max_batch, int(rate)))

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[Claimed]:
        limit = self._limit(tx, lease, now, limit)
        if limit <= 0:
            return []
        entries = tx.outbox.claim(self._lane, lease, now, limit)
        version = tx.members.consent_version()
        members = tx.members.get_many({e.message.to for e in entries})
        ready: list[OutboxEntry] = []
        settled: list[OutboxEntry] = []
        for entry in entries:
            gated = self._gate(entry, members.get(entry.message.to.e164), now)
            (ready if gated is None else settled).append(entry if gated is None else gated)
        if settled:
            self._write(tx, settled, now)
        claimed_at = self._monotonic()
        return [Claimed(entry, claimed_at, version) for entry in ready]

    async def perform(self, item: Claimed) -> Delivery:
        entry, message = item.entry, item.entry.message
        possible_duplicate = False
        if entry.in_doubt:
            found = await self._sms.lookup(message)
            now = self._clock.now()
            if found.state is Lookup.FOUND:
                return Delivery(entry, now, SendResult(accepted=True, provider_id=found.provider_id))
            if found.transient:
                return Delivery(entry, now, retry_at=now + timedelta(seconds=self._settings.lookup_retry_seconds))
            possible_duplicate = found.state is Lookup.UNKNOWN
        await self._pacer.acquire(self._lane, sms_segments(message.text))
        stale = self._monotonic() - item.claimed_at > self._settings.stale_claim_seconds
        if stale or await self._consent.changed_since(item.consent_version, message.to.e164):
            held_back = await self._check_again(entry)
            if held_back is not None:
                return Delivery(entry, self._clock.now(), held_back=held_back)
        result = await self._sms.send(message)
        if result.retry_after is not None or result.throttled:
            self._pacer.pause(self._lane, result.retry_after if result.retry_after is not None else 1.0)
        return Delivery(entry, self._clock.now(), result, possible_duplicate=possible_duplicate)

    def failed(self, item: Claimed, error: Exception) -> Delivery:
        result = SendResult(accepted=False, error=f"sender raised {type(error).__name__}: {error}")
        return Delivery(item.entry, self._clock.now(), result)

    def record(self, tx: Transaction, outcomes: list[Delivery], now: datetime) -> None:
        self._write(tx, [self._settle(d) for d in outcomes], now)
        opted_out = {d.entry.message.to for d in outcomes if d.result is not None and d.result.opted_out}
        if opted_out:
            self._opted_out_at_provider(tx, opted_out, now)

    @staticmethod
    def _opted_out_at_provider(tx: Transaction, phones: set[PhoneNumber], now: datetime) -> None:
        """The person texted STOP to the provider itself, which now refuses every text to them: record the opt-out
        so nothing more is queued for them (no confirmation: the provider sent its own)."""
        members = tx.members.get_many(phones, for_update=True)
        for phone in phones:
            subscriber = members.setdefault(phone.e164, Subscriber.first_contact(phone, now))
            if subscriber.opt_out(now, None, reason="opted out at provider"):
                log.info("%s opted out at the SMS provider; recorded", phone.masked)
        tx.members.save_many(list(members.values()))

    def after_commit(self, outcomes: list[Delivery]) -> None:
        if any(d.entry.message.journey_id for d in outcomes):
            self._on_journey()

    async def _check_again(self, entry: OutboxEntry) -> OutboxEntry | None:
        """Consent (and quiet hours) read again: its number's consent changed since the claim, or it waited long."""
        member = await self._store.transaction(lambda tx: tx.members.get(entry.message.to))
        return self._gate(entry, member, self._clock.now())

    def _limit(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> int:
        if self._lane is not Lane.BROADCAST:
            return limit
        if not tx.leases.take(BROADCAST_LEASE, lease.owner, now, lease.until):
            return 0
        if self._settings.daily_cap is None:
            return limit
        # What this worker holds claimed is on its way out too (the next batch is claimed while one is sending).
        sent_or_going = tx.outbox.count_sent(self._day(now)) + tx.outbox.count_claimed(self._lane, lease.owner)
        return min(limit, self._settings.daily_cap - sent_or_going)

    def _gate(self, entry: OutboxEntry, subscriber: Subscriber | None, now: datetime) -> OutboxEntry | None:
        """Why this message may not go now (suppressed, expired, rescheduled), or None to send it."""
        message = entry.message
        if subscriber is not None and not subscriber.may_receive(message.kind):
            # Consent can change between queueing and sending: the opt-out wins.
            return attrs.evolve(entry, status=DeliveryStatus.SUPPRESSED, next_attempt_at=None, in_doubt=False,
                                error=f"not sent: consent is {subscriber.consent.value}")
        if message.expires_at is not None and now >= message.expires_at:
            return attrs.evolve(entry, status=DeliveryStatus.EXPIRED, next_attempt_at=None, in_doubt=False,
                                error="not sent: the link in it had expired")
        if self._lane is Lane.BROADCAST and self._settings.quiet_hours.active:
            allowed = self._settings.quiet_hours.next_allowed(now, time_zones(message.to, self._settings.time_zone))
            if allowed > now:
                return attrs.evolve(entry, next_attempt_at=allowed)
        return None

    def _settle(self, d: Delivery) -> OutboxEntry:
        if d.held_back is not None:
            return d.held_back
        entry, result = d.entry, d.result
        duplicate = entry.possible_duplicate or d.possible_duplicate
        if result is None:
            return attrs.evolve(entry, next_attempt_at=d.retry_at or d.at)
        first = entry.first_attempt_at or d.at
        done = attrs.evolve(entry, first_attempt_at=first, in_doubt=False, possible_duplicate=duplicate,
                            error=result.error)
        if result.accepted:
            return attrs.evolve(done, status=DeliveryStatus.SENT, attempts=entry.attempts + 1, sent_at=d.at,
                                provider_id=result.provider_id, next_attempt_at=None)
        # A throttled send was refused before it was processed: it does not count as a failed attempt.
        attempts = entry.attempts if result.throttled else entry.attempts + 1
        log.warning("sms %s to %s failed (attempt %d): %s", entry.message.id, entry.message.to.masked, attempts,
                    result.error)
        retry_at = self._policy.next_attempt(attempts, first, d.at, result.retry_after) if result.transient else None
        if retry_at is not None:
            return attrs.evolve(done, attempts=attempts, next_attempt_at=retry_at, in_doubt=result.maybe_delivered)
        status = DeliveryStatus.EXPIRED if result.transient else DeliveryStatus.FAILED
        return attrs.evolve(done, status=status, attempts=attempts, next_attempt_at=None)

    def _write(self, tx: Transaction, entries: Sequence[OutboxEntry], now: datetime) -> None:
        tx.outbox.record(entries)
        sent = sum(1 for e in entries if e.status is DeliveryStatus.SENT)
        if sent:
            tx.outbox.add_sent(self._day(now), sent)
        for entry in entries:
            if entry.message.journey_id:
                report_sms_outcome(tx, entry, now)

    def _day(self, now: datetime) -> str:
        return now.astimezone(self._zone).date().isoformat()
