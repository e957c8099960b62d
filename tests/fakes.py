from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from weft.application.ports import OutboxEntry, Transaction
from weft.domain.messages import DeliveryStatus, InboundSms, OutboundSms, SendResult
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import ConsentChange, Subscriber

T = TypeVar("T")


class FixedClock:
    def __init__(self, at: datetime = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class SequentialIds:
    def __init__(self, prefix: str = "msg") -> None:
        self._counter = itertools.count(1)
        self._prefix = prefix

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class FakeSmsSender:
    """Records what it sends; `script` holds results to return, in order, before it starts accepting."""

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []
        self.attempts: list[OutboundSms] = []
        self.script: list[SendResult] = []

    def fail_next(self, *results: SendResult) -> None:
        self.script.extend(results)

    async def send(self, message: OutboundSms) -> SendResult:
        self.attempts.append(message)
        if self.script:
            return self.script.pop(0)
        self.sent.append(message)
        return SendResult(accepted=True, provider_id=f"fake-{len(self.sent)}")


@attrs.define
class _State:
    inbound: dict[str, tuple[InboundSms, datetime]] = attrs.field(factory=dict)
    subscribers: dict[str, Subscriber] = attrs.field(factory=dict)
    history: list[tuple[str, ConsentChange]] = attrs.field(factory=list)
    outbox: dict[str, OutboxEntry] = attrs.field(factory=dict)


class InMemoryStore:
    """The Store and Transaction ports in memory; a failing unit of work leaves no trace."""

    def __init__(self) -> None:
        self.state = _State()
        self.commits = 0

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        draft = InMemoryTransaction(copy.deepcopy(self.state))
        result = work(draft)
        self.state = draft.state
        self.commits += 1
        return result

    async def subscribers(self) -> list[Subscriber]:
        return sorted(self.state.subscribers.values(), key=lambda s: s.created_at, reverse=True)

    async def subscriber_detail(self, phone: PhoneNumber) -> dict[str, Any] | None:
        subscriber = self.state.subscribers.get(phone.e164)
        if subscriber is None:
            return None
        return {
            "subscriber": subscriber,
            "consent_history": [attrs.asdict(c) for p, c in self.state.history if p == phone.e164],
            "inbound": [{"text": m.text, "received_at": at} for m, at in self.state.inbound.values()
                        if m.sender == phone],
            "outbound": [e for e in self.state.outbox.values() if e.message.to == phone],
        }

    async def outbox(self, limit: int = 200) -> list[OutboxEntry]:
        return list(self.state.outbox.values())[-limit:]

    def subscriber(self, phone: str) -> Subscriber:
        return self.state.subscribers[phone]

    def messages(self, status: DeliveryStatus | None = None) -> list[OutboxEntry]:
        return [e for e in self.state.outbox.values() if status is None or e.status is status]


class InMemoryTransaction:
    def __init__(self, state: _State) -> None:
        self.state = state

    def record_inbound(self, message: InboundSms, at: datetime) -> bool:
        if message.provider_id in self.state.inbound:
            return False
        self.state.inbound[message.provider_id] = (message, at)
        return True

    def get_subscriber(self, phone: PhoneNumber) -> Subscriber | None:
        found = self.state.subscribers.get(phone.e164)
        return None if found is None else copy.deepcopy(found)

    def save_subscriber(self, subscriber: Subscriber) -> None:
        self.state.history.extend((subscriber.phone.e164, change) for change in subscriber.changes)
        subscriber.changes.clear()
        self.state.subscribers[subscriber.phone.e164] = copy.deepcopy(subscriber)

    def enqueue(self, message: OutboundSms, at: datetime) -> None:
        self.state.outbox[message.id] = OutboxEntry(
            message=message, status=DeliveryStatus.PENDING, attempts=0, created_at=at, next_attempt_at=at
        )

    def due_messages(self, now: datetime, limit: int) -> list[OutboxEntry]:
        due = [
            e for e in self.state.outbox.values()
            if e.status is DeliveryStatus.PENDING and e.next_attempt_at is not None and e.next_attempt_at <= now
        ]
        return sorted(due, key=lambda e: (e.next_attempt_at or now, e.created_at))[:limit]

    def update_delivery(self, message_id: str, entry: OutboxEntry) -> None:
        self.state.outbox[message_id] = entry
