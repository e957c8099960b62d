from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.fakes import FakeSmsSender, FixedClock, InMemoryStore, SequentialIds
from weft.application.deliver_outbox import DeliverOutbox, RetryPolicy
from weft.application.handle_inbound_sms import HandleInboundSms, KeywordSettings
from weft.application.replies import Replies
from weft.domain.messages import DeliveryStatus, InboundSms, OutboundSms, SendResult
from weft.domain.phone import PhoneNumber
from weft.entrypoints.background import BackgroundWorker

PHONE = PhoneNumber("+14155550123")
POLICY = RetryPolicy(max_attempts=3, base_delay=2)
TRANSIENT = SendResult(accepted=False, error="HTTP 503", transient=True)


class Harness:
    def __init__(self, policy: RetryPolicy = POLICY) -> None:
        self.store, self.clock, self.sms = InMemoryStore(), FixedClock(), FakeSmsSender()
        self.deliver = DeliverOutbox(self.store, self.sms, self.clock, policy)
        self.handle = HandleInboundSms(self.store, self.clock, SequentialIds(), Replies(), KeywordSettings())
        self.n = 0

    async def text(self, body: str) -> None:
        self.n += 1
        await self.handle(InboundSms(f"in-{self.n}", PHONE, body))

    def only(self) -> tuple[DeliveryStatus, int, str | None]:
        (entry,) = self.store.messages()
        return entry.status, entry.attempts, entry.error


async def test_a_queued_reply_is_sent_and_marked_with_the_provider_id() -> None:
    h = Harness()
    await h.text("LOVE")
    assert await h.deliver() == 1
    (entry,) = h.store.messages()
    assert (entry.status, entry.provider_id, entry.sent_at) == (DeliveryStatus.SENT, "fake-1", h.clock.now())


async def test_a_sent_message_is_never_sent_again() -> None:
    h = Harness()
    await h.text("LOVE")
    await h.deliver()
    h.clock.advance(3600)
    assert await h.deliver() == 0
    assert len(h.sms.attempts) == 1


async def test_a_transient_failure_is_retried_after_a_backoff() -> None:
    h = Harness()
    await h.text("LOVE")
    h.sms.fail_next(TRANSIENT)
    await h.deliver()
    assert h.only() == (DeliveryStatus.PENDING, 1, "HTTP 503")
    assert await h.deliver() == 0
    h.clock.advance(2)
    await h.deliver()
    assert h.only() == (DeliveryStatus.SENT, 2, None)


async def test_retry_after_from_the_provider_is_honoured() -> None:
    h = Harness()
    await h.text("LOVE")
    h.sms.fail_next(SendResult(accepted=False, error="HTTP 429", transient=True, retry_after=30))
    await h.deliver()
    (entry,) = h.store.messages()
    assert entry.next_attempt_at == h.clock.now() + timedelta(seconds=30)


async def test_a_permanent_failure_is_recorded_and_not_retried() -> None:
    h = Harness()
    await h.text("LOVE")
    h.sms.fail_next(SendResult(accepted=False, error="HTTP 400: invalid number"))
    await h.deliver()
    h.clock.advance(3600)
    await h.deliver()
    assert h.only() == (DeliveryStatus.FAILED, 1, "HTTP 400: invalid number")


async def test_transient_failures_give_up_after_the_attempt_limit() -> None:
    h = Harness()
    await h.text("LOVE")
    h.sms.fail_next(TRANSIENT, TRANSIENT, TRANSIENT)
    for _ in range(4):
        await h.deliver()
        h.clock.advance(3600)
    assert h.only() == (DeliveryStatus.FAILED, 3, "HTTP 503")
    assert h.sms.sent == []


async def test_a_reply_queued_before_an_opt_out_is_suppressed() -> None:
    h = Harness()
    await h.text("LOVE")
    await h.text("STOP")
    await h.deliver()
    statuses = {e.message.kind.value: e.status for e in h.store.messages()}
    assert statuses == {"join_link": DeliveryStatus.SUPPRESSED, "opt_out_confirmation": DeliveryStatus.SENT}
    assert [m.kind.value for m in h.sms.sent] == ["opt_out_confirmation"]


async def test_a_claimed_message_is_invisible_to_a_second_worker_until_its_lease_ends() -> None:
    h = Harness()
    await h.text("LOVE")
    entries = await h.store.transaction(lambda tx: h.deliver._claim(tx, h.clock.now()))
    assert len(entries) == 1
    assert await h.store.transaction(lambda tx: tx.due_messages(h.clock.now(), 10)) == []


async def test_stopping_the_worker_lets_the_batch_in_hand_finish_and_record() -> None:
    h = Harness()
    await h.text("LOVE")
    release = asyncio.Event()
    real_send = h.sms.send

    async def slow_send(message: OutboundSms) -> SendResult:
        await release.wait()
        return await real_send(message)

    h.sms.send = slow_send  # type: ignore[method-assign]
    worker = BackgroundWorker("outbox", h.deliver, poll_seconds=0.01)
    worker.start()
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert h.only() == (DeliveryStatus.SENT, 1, None)
