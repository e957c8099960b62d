from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import attrs

from weft.application.phone_numbers import is_valid, time_zones
from weft.application.ports import Clock
from weft.application.unit_of_work import Lease, Store, Transaction
from weft.application.views import CampaignSummary, CareCandidate, Views
from weft.domain.campaign import Campaign, CampaignState
from weft.domain.care import CareMonth, SkipReason, care_skip_reason
from weft.domain.errors import UnknownCampaign
from weft.domain.journey import AuditEntry
from weft.domain.messages import DeliveryStatus, MessageKind, OutboundSms
from weft.domain.phone import PhoneNumber
from weft.domain.quiet_hours import QuietHours

log = logging.getLogger(__name__)

PREVIEW_RECIPIENTS = 20


@attrs.frozen
class CareSettings:
    text: str
    """The care message, with the program name already filled in."""
    quiet_hours: QuietHours = QuietHours.parse("21:00-09:00")
    time_zone: str = "UTC"
    """The zone whose calendar decides "this month", and the quiet-hours zone of a number whose zone is unknown."""
    batch: int = 200
    batches_per_run: int = 25
    """How many batches one claim of the selection walks before it lets other work (and a shutdown) in."""
    watch_seconds: float = 5.0


@attrs.frozen
class CarePreview:
    """The dry run: what a run for the month would do now, with nothing sent."""

    month: str
    eligible: int
    skipped: dict[str, int]
    recipients: list[str]
    """The first eligible numbers, masked."""


@attrs.frozen
class _Decision:
    candidate: CareCandidate
    skip: SkipReason | None
    due: datetime


class _Selector:
    """The one selection rule, shared by the run and its preview: eligibility, then when quiet hours allow."""

    def __init__(self, settings: CareSettings) -> None:
        self._settings = settings

    def decide(self, candidate: CareCandidate, now: datetime) -> _Decision:
        phone = PhoneNumber(candidate.phone)
        skip = care_skip_reason(candidate.consent, candidate.payments, is_valid(phone))
        due = now
        if skip is None and self._settings.quiet_hours.active:
            due = self._settings.quiet_hours.next_allowed(now, time_zones(phone, self._settings.time_zone))
        return _Decision(candidate, skip, due)

    def month_of(self, now: datetime) -> CareMonth:
        return CareMonth.of(now.astimezone(ZoneInfo(self._settings.time_zone)))


class StartMonthlyCare:
    """Start this month's care message run, or resume it; returns its summary at once (the pipeline sends).
    Once per member per month whatever triggers it: a second trigger only adds members who became eligible."""

    def __init__(self, store: Store, views: Views, clock: Clock, settings: CareSettings,
                 on_started: Callable[[], None] = lambda: None) -> None:
        self._store, self._views, self._clock = store, views, clock
        self._settings, self._on_started = settings, on_started
        self._selector = _Selector(settings)

    async def __call__(self, month: CareMonth | None = None) -> CampaignSummary:
        now = self._clock.now()
        month = month or self._selector.month_of(now)
        await self._store.transaction(lambda tx: self._start(tx, month, now))
        self._on_started()
        summary = await self._views.campaign(month.campaign_id)
        if summary is None:
            raise UnknownCampaign(f"campaign {month.campaign_id} was not recorded")
        return summary

    def _start(self, tx: Transaction, month: CareMonth, now: datetime) -> None:
        campaign = tx.campaigns.get(month.campaign_id)
        if campaign is None:
            campaign = Campaign(id=month.campaign_id, month=month.value, text=self._settings.text, created_at=now)
            tx.campaigns.save(campaign)
            tx.campaigns.schedule(campaign.id, now)
            tx.audit.add(AuditEntry("campaign.started", now, details={"campaign_id": campaign.id}))
        elif campaign.trigger(now):
            tx.campaigns.save(campaign)
            tx.campaigns.wake(campaign.id, now)
            tx.audit.add(AuditEntry("campaign.resumed", now, details={"campaign_id": campaign.id,
                                                                       "pass": campaign.passes}))


class PreviewMonthlyCare:
    """The dry run: the same selection as a run, with nothing queued or sent."""

    def __init__(self, views: Views, clock: Clock, settings: CareSettings) -> None:
        self._views, self._clock, self._settings = views, clock, settings
        self._selector = _Selector(settings)

    async def __call__(self, month: CareMonth | None = None) -> CarePreview:
        now = self._clock.now()
        month = month or self._selector.month_of(now)
        eligible, skipped, recipients = 0, Counter[str](), list[str]()
        cursor = ""
        while candidates := await self._views.care_candidates(cursor, self._settings.batch):
            cursor = candidates[-1].phone
            decisions = [self._selector.decide(c, now) for c in candidates]
            for decision in await self._with_sent(decisions, month):
                if decision.skip is not None:
                    skipped[decision.skip.value] += 1
                    continue
                eligible += 1
                if len(recipients) < PREVIEW_RECIPIENTS:
                    recipients.append(PhoneNumber(decision.candidate.phone).masked)
        return CarePreview(month.value, eligible, dict(skipped), recipients)

    async def _with_sent(self, decisions: list[_Decision], month: CareMonth) -> list[_Decision]:
        """Mark the already-queued (sent this month) and those in quiet hours now as skipped."""
        keys = {month.message_key(d.candidate.phone) for d in decisions if d.skip is None}
        queued = await self._views.queued_keys(keys) if keys else set()
        now = self._clock.now()

        def final(d: _Decision) -> _Decision:
            if d.skip is not None:
                return d
            if month.message_key(d.candidate.phone) in queued:
                return attrs.evolve(d, skip=SkipReason.ALREADY_SENT)
            return attrs.evolve(d, skip=SkipReason.QUIET_HOURS) if d.due > now else d

        return [final(d) for d in decisions]


@attrs.frozen
class CampaignRun:
    campaign_id: str


class RunCampaigns:
    """The campaign's own background work: walk the members in number order and queue each eligible one's care
    message (resuming after the last batch when a worker died), then watch the sends until none is pending."""

    name = "campaigns"

    def __init__(self, store: Store, views: Views, clock: Clock, settings: CareSettings,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self._store, self._views, self._clock = store, views, clock
        self._settings, self._on_queued = settings, on_queued
        self._selector = _Selector(settings)

    def batch_size(self) -> int:
        return 1

    def claim(self, tx: Transaction, lease: Lease, now: datetime, limit: int) -> list[Campaign]:
        return tx.campaigns.claim(lease, now, limit)

    async def perform(self, campaign: Campaign) -> CampaignRun:
        selected = campaign.state is CampaignState.SELECTING and await self._select(campaign)
        if selected or campaign.state is CampaignState.SENDING:
            await self._store.transaction(lambda tx: self._watch(tx, campaign.id, self._clock.now()))
        return CampaignRun(campaign.id)

    def failed(self, campaign: Campaign, error: Exception) -> CampaignRun:
        return CampaignRun(campaign.id)

    def record(self, tx: Transaction, outcomes: list[CampaignRun], now: datetime) -> None:
        for run in outcomes:
            campaign = tx.campaigns.get(run.campaign_id)  # read again: a trigger may have started a new pass
            if campaign is None:
                continue
            due = {CampaignState.SELECTING: now, CampaignState.SENDING: now + timedelta(
                seconds=self._settings.watch_seconds)}.get(campaign.state)
            tx.campaigns.schedule(campaign.id, due)

    def after_commit(self, outcomes: list[CampaignRun]) -> None:
        pass

    async def _select(self, campaign: Campaign) -> bool:
        """Walk up to `batches_per_run` batches; True when the walk has reached the last member."""
        cursor = campaign.cursor or ""
        for _ in range(self._settings.batches_per_run):
            candidates = await self._views.care_candidates(cursor, self._settings.batch)
            now = self._clock.now()
            decisions = [self._selector.decide(c, now) for c in candidates]
            last = candidates[-1].phone if candidates else cursor
            done = len(candidates) < self._settings.batch
            moved = await self._store.transaction(
                partial(self._queue, claimed=campaign, cursor=cursor, last=last, decisions=decisions, done=done,
                        now=now))
            self._on_queued()
            if done or not moved:
                return done and moved
            cursor = last
        return False

    def _queue(self, tx: Transaction, claimed: Campaign, cursor: str, last: str, decisions: Sequence[_Decision],
               done: bool, now: datetime) -> bool:
        campaign = tx.campaigns.get(claimed.id)
        if campaign is None or campaign.state is not CampaignState.SELECTING or (campaign.cursor or "") != cursor:
            return False  # another worker has moved this selection on (our lease had lapsed)
        messages = [(self._message(campaign, d.candidate.phone), d.due) for d in decisions if d.skip is None]
        queued = tx.outbox.enqueue_many(messages, now)
        skipped = Counter(d.skip for d in decisions if d.skip is not None)
        campaign.selected_batch(last, queued, dict(skipped))
        if done:
            campaign.selection_done()
            tx.audit.add(AuditEntry("campaign.selected", now, details={
                "campaign_id": campaign.id, "selected": campaign.selected, "skipped": campaign.skipped}))
        tx.campaigns.save(campaign)
        return True

    @staticmethod
    def _message(campaign: Campaign, phone: str) -> OutboundSms:
        return OutboundSms(id=CareMonth(campaign.month).message_key(phone), to=PhoneNumber(phone),
                           text=campaign.text, kind=MessageKind.CARE, campaign_id=campaign.id)

    @staticmethod
    def _watch(tx: Transaction, campaign_id: str, now: datetime) -> None:
        campaign = tx.campaigns.get(campaign_id)
        if campaign is None or campaign.state is not CampaignState.SENDING:
            return
        if tx.outbox.campaign_pending(campaign_id):
            return
        counts = tx.outbox.campaign_counts(campaign_id, now)  # once, for the audit entry
        if counts[DeliveryStatus.PENDING] == 0:
            campaign.finish(now)
            tx.campaigns.save(campaign)
            tx.audit.add(AuditEntry("campaign.finished", now, details={
                "campaign_id": campaign_id, **{s.value: n for s, n in counts.by_status.items()}}))
