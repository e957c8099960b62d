from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

import attrs

from weft.application.delivery_stats import Outcome
from weft.application.paging import Page, Position
from weft.application.unit_of_work import CampaignCounts, MirrorBacklog, OutboxEntry, ReceivedEvent
from weft.domain.alerts import Alert
from weft.domain.campaign import Campaign
from weft.domain.journey import AuditEntry, Journey
from weft.domain.messages import DeliveryStatus, Lane
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, ConsentChange, Subscriber


@attrs.frozen
class InboundRecord:
    """A text the number sent us, and whether (and how) it was applied."""

    provider_id: str
    text: str
    received_at: datetime
    processed_at: datetime | None = None
    error: str | None = None


@attrs.frozen
class SubscriberDetail:
    subscriber: Subscriber
    consent_history: list[ConsentChange]
    """Oldest first: the ledger of every consent change, with what caused it."""
    inbound: list[InboundRecord]
    """Oldest first."""
    outbound: list[OutboxEntry]
    payments: list[Payment] = attrs.field(factory=list)
    """Newest first."""
    journeys: list[Journey] = attrs.field(factory=list)
    """Those of its payments, newest first."""


@attrs.frozen
class CareCandidate:
    """What the care eligibility rule needs to know about one number."""

    phone: str
    consent: Consent
    payments: frozenset[PaymentStatus]


@attrs.frozen
class CampaignSummary:
    """A campaign with where its messages stand."""

    campaign: Campaign
    counts: CampaignCounts

    @property
    def eligible(self) -> int:
        return self.counts.total

    @property
    def sent(self) -> int:
        return self.counts[DeliveryStatus.SENT]

    @property
    def failed(self) -> int:
        return self.counts[DeliveryStatus.FAILED] + self.counts[DeliveryStatus.EXPIRED]

    @property
    def pending(self) -> int:
        return self.counts[DeliveryStatus.PENDING]

    @property
    def rate_per_second(self) -> float:
        return round(self.counts.sent_last_minute / 60, 2)


@attrs.frozen
class MemberQuery:
    """Which members a list shows: one number or email (exact, as normalised), a consent, a tier (`free`, `paid`
    or a paid tier's name)."""

    phone: PhoneNumber | None = None
    email: str | None = None
    consent: Consent | None = None
    tier: str | None = None


@attrs.frozen
class AuditRecord:
    id: int
    entry: AuditEntry


def member_position(s: Subscriber) -> Position:
    return Position(s.created_at, s.phone.e164)


def payment_position(p: Payment) -> Position:
    return Position(p.created_at, p.id)


def journey_position(j: Journey) -> Position:
    return Position(j.started_at, j.id)


def outbox_position(e: OutboxEntry) -> Position:
    return Position(e.created_at, e.message.id)


def audit_position(r: AuditRecord) -> Position:
    return Position(r.entry.at, f"{r.id:012d}")


def event_position(r: ReceivedEvent) -> Position:
    return Position(r.received_at, r.event.id)


def campaign_position(s: CampaignSummary) -> Position:
    return Position(None, s.campaign.month)


@attrs.frozen
class MirrorStatus:
    """Where the copy in the organisers' base stands: what waits, and when a push last landed."""

    backlog: MirrorBacklog
    last_pushed_at: datetime | None


class Views(Protocol):
    """Reads for the admin, the CLI and the preview: typed read models, never the write repositories."""

    async def subscribers(self, query: MemberQuery | None = None, after: Position | None = None,
                          limit: int = 200) -> Page[Subscriber]:
        """The members `query` picks, newest first (by number among equals), the page after `after`."""
        ...

    async def subscriber_detail(self, phone: PhoneNumber) -> SubscriberDetail | None:
        """State, consent history, and messages in and out for one number; None when unknown."""
        ...

    async def delivery_outcomes(self, since: datetime) -> list[Outcome]:
        """Every SMS (ours, not the provider's automations') and welcome email queued since then, and where each
        stands now."""
        ...

    async def outbox(self, failed_only: bool = False, after: Position | None = None,
                     limit: int = 200) -> Page[OutboxEntry]:
        """Outbox entries, newest first, or only those that never reached the phone (OutboxEntry.failed)."""
        ...

    async def payments(self, after: Position | None = None, limit: int = 200) -> Page[Payment]:
        """Payments, newest first."""
        ...

    async def payment_for_session(self, session_id: str) -> Payment | None:
        """The payment opened by this checkout session."""
        ...

    async def journeys(self, failed_only: bool = False, after: Position | None = None,
                       limit: int = 200) -> Page[Journey]:
        """Journeys newest first, or only those with a failed step."""
        ...

    async def received_events(self, pending_only: bool = True, after: Position | None = None,
                              limit: int = 200) -> Page[ReceivedEvent]:
        """Payment events as received, oldest first; by default only those not processed yet."""
        ...

    async def audit_log(self, action: str | None, since: datetime | None, after: Position | None = None,
                        limit: int = 500) -> Page[AuditRecord]:
        """Audit entries, newest first, filtered by action and time."""
        ...

    async def consent_version(self) -> int:
        """As Members.consent_version, read outside any transaction."""
        ...

    async def consent_changes(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(version, E.164 number) of each consent change with a version above `after`, oldest first, at most
        `limit`; the version of a change is what consent_version read once it was saved."""
        ...

    async def care_candidates(self, after: str, limit: int) -> list[CareCandidate]:
        """Subscribers with a number above `after`, in number order, with their payments' statuses."""
        ...

    async def queued_keys(self, keys: Collection[str]) -> set[str]:
        """Which of these outbox keys exist."""
        ...

    async def campaigns(self, after: Position | None = None, limit: int = 24) -> Page[CampaignSummary]:
        """The newest campaigns with their counts."""
        ...

    async def mirror_status(self) -> MirrorStatus:
        """The copies waiting for the organisers' base and the last push that landed."""
        ...

    async def campaign(self, campaign_id: str) -> CampaignSummary | None:
        ...

    async def campaign_sendable(self, campaign_id: str, now: datetime, retry_until: datetime) -> int:
        """The campaign's pending texts that could go now: due by `now`, or retrying after a failed attempt and due
        by `retry_until` (not those held back until quiet hours end, attempted or not)."""
        ...

    async def sms_outcome_counts(self, since: datetime) -> dict[str, int]:
        """How many SMS queued since then (ours, not the provider's automations') stand at each of
        delivery_stats.OUTCOMES now."""
        ...

    async def queue_depth(self) -> dict[Lane, int]:
        """Pending outbox texts per lane (every lane, 0 when none)."""
        ...

    async def active_alerts(self) -> list[Alert]:
        """The alerts active now, the longest-standing first."""
        ...
