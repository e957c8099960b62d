from __future__ import annotations

from collections.abc import Callable

from weft.application.handle_payment_event import EventOutcome, handled
from weft.application.ports import Clock, PaymentEvent
from weft.application.unit_of_work import Store


class ReceivePaymentEvent:
    """Store a verified payment event once and answer at once; ProcessPaymentEvents applies it from the queue,
    at the provider's pace, so a burst of webhooks never waits on the provider."""

    def __init__(self, store: Store, clock: Clock, on_received: Callable[[], None] = lambda: None) -> None:
        self._store, self._clock, self._on_received = store, clock, on_received

    async def __call__(self, event: PaymentEvent) -> EventOutcome:
        if not handled(event.type):
            return EventOutcome.IGNORED
        now = self._clock.now()
        if not await self._store.transaction(lambda tx: tx.received_events.receive(event, now)):
            return EventOutcome.DUPLICATE
        self._on_received()
        return EventOutcome.RECEIVED
