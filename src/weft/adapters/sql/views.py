from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.alerts import ACTIVE_ALERTS, alert_from_row
from weft.adapters.sql.campaigns import campaign_from_row
from weft.adapters.sql.journeys import journey_from_row
from weft.adapters.sql.members import CONSENT_VERSION, subscriber_from_row
from weft.adapters.sql.mirror import SqlMirrorQueue
from weft.adapters.sql.outbox import SqlCursors, campaign_counts, entry_from_row
from weft.adapters.sql.payments import audit_from_row, payment_from_row
from weft.adapters.sql.received_events import received_event_from_row
from weft.application.delivery_stats import OUTCOMES, Outcome, email_outcome, sms_outcome
from weft.application.mirror import PUSHED_CURSOR
from weft.application.paging import Page, Position, page_of
from weft.application.ports import Clock
from weft.application.unit_of_work import OutboxEntry, ReceivedEvent
from weft.application.views import (
    AuditRecord,
    CampaignSummary,
    CareCandidate,
    InboundRecord,
    MemberQuery,
    MirrorStatus,
    SubscriberDetail,
    audit_position,
    campaign_position,
    event_position,
    journey_position,
    member_position,
    outbox_position,
    payment_position,
)
from weft.domain.alerts import Alert
from weft.domain.journey import Journey, Step
from weft.domain.messages import DeliveryState, DeliveryStatus, Lane, MessageKind
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, ConsentChange, Subscriber

T = TypeVar("T")


class SqlViews:
    """The Views port: each read on its own pooled connection in a worker thread, never through the writer."""

    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock

    async def subscribers(self, query: MemberQuery | None = None, after: Position | None = None,
                          limit: int = 200) -> Page[Subscriber]:
        m = t.subscribers.c
        select = _ordered(sa.select(t.subscribers).where(*_member_filter(query or MemberQuery())),
                          m.created_at, m.phone, after)
        return await self._read(lambda c: page_of(
            [subscriber_from_row(row) for row in c.execute(select.limit(limit + 1))], limit, member_position))

    async def subscriber_detail(self, phone: PhoneNumber) -> SubscriberDetail | None:
        return await self._read(lambda c: _detail(c, phone))

    async def delivery_outcomes(self, since: datetime) -> list[Outcome]:
        return await self._read(lambda c: _delivery_outcomes(c, since))

    async def outbox(self, failed_only: bool = False, after: Position | None = None,
                     limit: int = 200) -> Page[OutboxEntry]:
        return await self._read(lambda c: page_of(_outbox(c, limit + 1, after=after, failed_only=failed_only),
                                                  limit, outbox_position))

    async def payments(self, after: Position | None = None, limit: int = 200) -> Page[Payment]:
        return await self._read(lambda c: page_of(_payments(c, limit + 1, after=after), limit, payment_position))

    async def payment_for_session(self, session_id: str) -> Payment | None:
        found = await self._read(lambda c: _payments(c, 1, session_id=session_id))
        return found[0] if found else None

    async def journeys(self, failed_only: bool = False, after: Position | None = None,
                       limit: int = 200) -> Page[Journey]:
        j = t.journeys.c
        query = _ordered(sa.select(t.journeys), j.started_at, j.id, after)
        if failed_only:
            query = query.where(j.has_failed_step.is_(True))
        return await self._read(lambda c: page_of(
            [journey_from_row(row) for row in c.execute(query.limit(limit + 1))], limit, journey_position))

    async def received_events(self, pending_only: bool = True, after: Position | None = None,
                              limit: int = 200) -> Page[ReceivedEvent]:
        r = t.received_events.c
        query = _ordered(sa.select(t.received_events), r.received_at, r.event_id, after, newest_first=False)
        if pending_only:
            query = query.where(r.status == "pending")
        return await self._read(lambda c: page_of(
            [received_event_from_row(row) for row in c.execute(query.limit(limit + 1))], limit, event_position))

    async def audit_log(self, action: str | None, since: datetime | None, after: Position | None = None,
                        limit: int = 500) -> Page[AuditRecord]:
        a = t.audit_log.c
        query = _ordered(sa.select(t.audit_log), a.at, a.id, after, key_type=int)
        if action:
            query = query.where(a.action == action)
        if since is not None:
            query = query.where(a.at >= since)
        return await self._read(lambda c: page_of(
            [AuditRecord(row.id, audit_from_row(row)) for row in c.execute(query.limit(limit + 1))], limit,
            audit_position))

    async def consent_version(self) -> int:
        return await self._read(lambda c: int(c.execute(CONSENT_VERSION).scalar() or 0))

    async def consent_changes(self, after: int, limit: int) -> list[tuple[int, str]]:
        h = t.consent_history.c
        query = sa.select(h.id, h.phone).where(h.id > after).order_by(h.id).limit(limit)
        return await self._read(lambda c: [(row.id, row.phone) for row in c.execute(query)])

    async def care_candidates(self, after: str, limit: int) -> list[CareCandidate]:
        return await self._read(lambda c: _care_candidates(c, after, limit))

    async def queued_keys(self, keys: Collection[str]) -> set[str]:
        query = sa.select(t.outbox.c.id).where(t.outbox.c.id.in_(list(keys)))
        return await self._read(lambda c: {row[0] for row in c.execute(query)})

    async def campaigns(self, after: Position | None = None, limit: int = 24) -> Page[CampaignSummary]:
        month = t.campaigns.c.month
        query = sa.select(t.campaigns).order_by(month.desc()).limit(limit + 1)
        if after is not None:
            query = query.where(month < after.key)
        now = self._clock.now()
        return await self._read(lambda c: page_of([
            CampaignSummary(campaign_from_row(row), campaign_counts(c, row.id, now)) for row in c.execute(query)
        ], limit, campaign_position))

    async def campaign(self, campaign_id: str) -> CampaignSummary | None:
        query = sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)
        now = self._clock.now()

        def read(c: sa.Connection) -> CampaignSummary | None:
            row = c.execute(query).first()
            return None if row is None else CampaignSummary(campaign_from_row(row), campaign_counts(c, row.id, now))

        return await self._read(read)

    async def mirror_status(self) -> MirrorStatus:
        now = self._clock.now()

        def read(c: sa.Connection) -> MirrorStatus:
            pushed = SqlCursors(c).get(PUSHED_CURSOR)
            return MirrorStatus(SqlMirrorQueue(c).backlog(now), datetime.fromisoformat(pushed) if pushed else None)

        return await self._read(read)

    async def campaign_sendable(self, campaign_id: str, now: datetime, retry_until: datetime) -> int:
        o = t.outbox.c
        query = sa.select(sa.func.count()).where(
            o.campaign_id == campaign_id, o.status == DeliveryStatus.PENDING.value,
            sa.or_(o.next_attempt_at <= now, sa.and_(o.attempts > 0, o.next_attempt_at <= retry_until)))
        return await self._read(lambda c: int(c.execute(query).scalar() or 0))

    async def sms_outcome_counts(self, since: datetime) -> dict[str, int]:
        return await self._read(lambda c: _sms_outcome_counts(c, since))

    async def queue_depth(self) -> dict[Lane, int]:
        o = t.outbox.c
        query = sa.select(o.lane, sa.func.count()).where(o.status == DeliveryStatus.PENDING.value).group_by(o.lane)

        def read(c: sa.Connection) -> dict[Lane, int]:
            return {**dict.fromkeys(Lane, 0), **{Lane(lane): count for lane, count in c.execute(query)}}

        return await self._read(read)

    async def active_alerts(self) -> list[Alert]:
        return await self._read(lambda c: [alert_from_row(row) for row in c.execute(ACTIVE_ALERTS)])

    async def _read(self, query: Callable[[sa.Connection], T]) -> T:
        return await asyncio.to_thread(self._run, query)

    def _run(self, query: Callable[[sa.Connection], T]) -> T:
        with self._engine.connect() as connection:
            return query(connection)


def _care_candidates(c: sa.Connection, after: str, limit: int) -> list[CareCandidate]:
    s, p = t.subscribers.c, t.payments.c
    page = sa.select(s.phone, s.consent).where(s.phone > after).order_by(s.phone).limit(limit).subquery()
    query = (
        sa.select(page.c.phone, page.c.consent, p.status)
        .select_from(page.outerjoin(t.payments, p.phone == page.c.phone))
        .distinct().order_by(page.c.phone)
    )
    consent: dict[str, Consent] = {}
    statuses: defaultdict[str, set[PaymentStatus]] = defaultdict(set)
    for phone, consent_value, status in c.execute(query):
        consent[phone] = Consent(consent_value)
        if status is not None:
            statuses[phone].add(PaymentStatus(status))
    return [CareCandidate(phone, value, frozenset(statuses[phone])) for phone, value in consent.items()]


def _sms_outcome_counts(c: sa.Connection, since: datetime) -> dict[str, int]:
    o = t.outbox.c
    query = sa.select(o.status, o.delivery_state, sa.func.count()).where(
        o.created_at >= since, o.kind != MessageKind.SENT_BY_PROVIDER.value).group_by(o.status, o.delivery_state)
    counts = dict.fromkeys(OUTCOMES, 0)
    for status, state, count in c.execute(query):
        outcome = sms_outcome(DeliveryStatus(status), DeliveryState(state) if state else None)
        if outcome is not None:
            counts[outcome] += count
    return counts


def _delivery_outcomes(c: sa.Connection, since: datetime) -> list[Outcome]:
    o = t.outbox.c
    found = []
    sms = sa.select(o.created_at, o.status, o.delivery_state).where(
        o.created_at >= since, o.kind != MessageKind.SENT_BY_PROVIDER.value)
    for at, status, state in c.execute(sms):
        outcome = sms_outcome(DeliveryStatus(status), DeliveryState(state) if state else None)
        if outcome is not None:
            found.append(Outcome("sms", at, outcome))
    journeys = sa.select(t.journeys).where(t.journeys.c.started_at >= since)
    for row in c.execute(journeys):
        journey = journey_from_row(row)
        found.append(Outcome("email", journey.started_at, email_outcome(journey.steps.get(Step.EMAIL_SENT))))
    return found


def _outbox(c: sa.Connection, limit: int, phone: str | None = None, after: Position | None = None,
            failed_only: bool = False) -> list[OutboxEntry]:
    query = _ordered(sa.select(t.outbox), t.outbox.c.created_at, t.outbox.c.id, after).limit(limit)
    if phone is not None:
        query = query.where(t.outbox.c.phone == phone)
    if failed_only:
        query = query.where(t.FAILED)  # the partial index's own condition, so the planner uses ix_outbox_failed
    return [entry_from_row(row) for row in c.execute(query)]


def _payments(c: sa.Connection, limit: int, session_id: str | None = None,
              after: Position | None = None) -> list[Payment]:
    query = _ordered(sa.select(t.payments), t.payments.c.created_at, t.payments.c.id, after).limit(limit)
    if session_id is not None:
        query = query.where(t.payments.c.checkout_session_id == session_id)
    return [payment_from_row(row) for row in c.execute(query)]


def _detail(c: sa.Connection, phone: PhoneNumber) -> SubscriberDetail | None:
    row = c.execute(sa.select(t.subscribers).where(t.subscribers.c.phone == phone.e164)).first()
    if row is None:
        return None
    history = c.execute(
        sa.select(t.consent_history).where(t.consent_history.c.phone == phone.e164).order_by(t.consent_history.c.id)
    )
    inbound = c.execute(
        sa.select(t.inbound_messages).where(t.inbound_messages.c.phone == phone.e164)
        .order_by(t.inbound_messages.c.received_at)
    )
    return SubscriberDetail(
        subscriber=subscriber_from_row(row),
        consent_history=[ConsentChange(Consent(r.consent), r.at, r.message_id, r.reason) for r in history],
        inbound=[InboundRecord(r.provider_id, r.text, r.received_at, r.processed_at, r.error) for r in inbound],
        outbound=list(reversed(_outbox(c, 1000, phone.e164))),
        payments=(payments := _member_payments(c, phone)),
        journeys=[journey_from_row(r) for r in c.execute(
            _ordered(sa.select(t.journeys), t.journeys.c.started_at, t.journeys.c.id, None)
            .where(t.journeys.c.payment_id.in_([p.id for p in payments])))],
    )


def _member_payments(c: sa.Connection, phone: PhoneNumber) -> list[Payment]:
    query = _ordered(sa.select(t.payments), t.payments.c.created_at, t.payments.c.id, None)
    return [payment_from_row(row) for row in c.execute(query.where(t.payments.c.phone == phone.e164).limit(200))]


def _ordered(query: sa.Select[Any], at: sa.ColumnElement[Any], key: sa.ColumnElement[Any],
             after: Position | None, newest_first: bool = True, key_type: Callable[[str], Any] = str) -> sa.Select[Any]:
    """The keyset page order (by time, then key ascending among equals) and the rows beyond `after`."""
    query = query.order_by(at.desc() if newest_first else at.asc(), key.asc())
    if after is None or after.at is None:
        return query
    beyond = at < after.at if newest_first else at > after.at
    return query.where(sa.or_(beyond, sa.and_(at == after.at, key > key_type(after.key))))


def _member_filter(q: MemberQuery) -> list[sa.ColumnElement[bool]]:
    m = t.subscribers.c
    found: list[sa.ColumnElement[bool]] = []
    if q.phone is not None:
        found.append(m.phone == q.phone.e164)
    if q.email is not None:
        found.append(m.email == q.email)
    if q.consent is not None:
        found.append(m.consent == q.consent.value)
    if q.tier in ("free", "paid"):
        found.append(m.membership == q.tier)
    elif q.tier:
        found.append(m.paid_tier == q.tier)
    return found
