from __future__ import annotations

from collections.abc import Sequence

from weft.application.ports import Clock
from weft.application.unit_of_work import Store
from weft.domain.messages import DeliveryReceipt


class RecordDeliveryReceipts:
    """Record what a provider reports about texts it accepted (Twilio's status callbacks, Bird's status events),
    in any order and any number of times: a message's state only moves forward (DeliveryState.rank)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    async def __call__(self, receipts: Sequence[DeliveryReceipt]) -> int:
        """How many receipts matched a message we sent (the others are ignored)."""
        now = self._clock.now()
        return await self._store.transaction(lambda tx: tx.outbox.apply_receipts(receipts, now))
