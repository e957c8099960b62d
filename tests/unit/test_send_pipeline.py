"""The send pipeline with fakes: one key one text, lanes, pacing in segments, 429 pauses, the daily cap, opt-outs
at send time, lifetimes, and messages a crash left in doubt."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.fakes import FakeSmsSender
from tests.unit.harness import PHONE, World
from weft.application.deliver_outbox import BROADCAST_LEASE, SendSettings
from weft.application.unit_of_work import Lease, Transaction
from weft.domain.messages import (
    DeliveryStatus,
    InboundSms,
    Lane,
    Lookup,
    LookupResult,
    MessageKind,
    OutboundSms,
    SendResult,
)
from weft.domain.phone import PhoneNumber
from weft.domain.quiet_hours import QuietHours

OTHER = "+14155550199"


def care(n: int, phone: str | None = None, text: str = "Our monthly care message") -> OutboundSms:
    number = phone or f"+1415555{n:04d}"
    return OutboundSms(f"care:2026-11:{number}", PhoneNumber(number), text, MessageKind.CARE,
                       campaign_id="care-2026-11")


async def queue(w: World, *messages: OutboundSms) -> None:
    now = w.clock.now()
    await w.store.transaction(lambda tx: [tx.outbox.enqueue_once(m, now, now) for m in messages])


async def members(w: World, count: int) -> list[OutboundSms]:
    """`count` subscribed members, each with a care message queued."""
    messages = [care(n) for n in range(count)]
    for m in messages:
        await w.text("LOVE", m.to.e164)
    await w.deliver(Lane.PRIORITY)
    w.sms.sent.clear()
    w.sms.attempts.clear()
    if isinstance(w.sms, TimedSender):
        w.sms.times.clear()
    await queue(w, *messages)
    return messages


class TimedSender(FakeSmsSender):
    """Notes the fake clock's time of every send."""

    def __init__(self, w: World) -> None:
        super().__init__()
        self.world, self.times = w, list[float]()

    async def send(self, message: OutboundSms) -> SendResult:
        self.times.append(self.world.clock.monotonic())
        return await super().send(message)


def paced(rate: float, **settings: object) -> World:
    w = World(rate=rate, send_settings=SendSettings(quiet_hours=QuietHours.none(), consent_poll_seconds=0, **settings))  # type: ignore[arg-type]
    w.sms = TimedSender(w)
    w.outbox = {lane: w._worker(w.deliverer(lane), 8) for lane in Lane}
    return w


async def test_a_key_queued_twice_makes_one_row_and_one_text() -> None:
    w = World()
    await queue(w, care(1, PHONE))
    await queue(w, care(1, PHONE))
    assert len(w.store.messages()) == 1
    await w.text("LOVE")
    await w.deliver()
    assert [m.kind for m in w.sms.sent].count(MessageKind.CARE) == 1


async def test_a_redelivered_inbound_text_gets_one_reply_keyed_by_its_provider_id() -> None:
    w = World()
    await w.inbound(_inbound("bird-1", "HELP"))
    await w.inbound_worker.drain()
    await w.inbound(_inbound("bird-1", "HELP"))
    await w.inbound_worker.drain()
    assert [e.message.id for e in w.store.messages()] == ["reply:bird-1"]


async def test_the_priority_lane_goes_before_a_broadcast_that_is_already_queued() -> None:
    w = paced(10)
    await members(w, 30)
    await w.text("HELP", OTHER)
    await asyncio.gather(w.deliver(Lane.BROADCAST), w.deliver(Lane.PRIORITY))  # both lanes send at once
    assert MessageKind.HELP in [m.kind for m in w.sms.sent[:2]]
    assert len(w.sms.sent) == 31


async def test_a_stop_confirmation_overtakes_a_large_paced_run_within_seconds() -> None:
    w = paced(10)
    await members(w, 40)
    started = w.clock.monotonic()
    running = asyncio.ensure_future(w.deliver(Lane.BROADCAST))
    while len(w.sms.sent) < 5:  # the run is under way
        await asyncio.sleep(0)
    await w.text("STOP", OTHER)
    await asyncio.gather(running, w.deliver(Lane.PRIORITY))
    stop_at = next(t for t, m in zip(w.sms.times, w.sms.sent, strict=True)
                   if m.kind is MessageKind.OPT_OUT_CONFIRMATION)
    assert stop_at - started < 3
    assert [m.kind for m in w.sms.sent].count(MessageKind.CARE) == 40


async def test_pacing_holds_the_configured_rate() -> None:
    w = paced(10)
    await members(w, 50)
    await w.deliver(Lane.BROADCAST)
    times = w.sms.times
    assert len(times) == 50
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 9.5 <= rate <= 10.5


async def test_pacing_counts_segments_so_a_two_part_text_takes_two_slots() -> None:
    w = paced(10)
    await w.text("LOVE", PHONE)
    await w.deliver()
    await queue(w, care(0, PHONE, text="x" * 200))  # the pacer is already busy when the measured run starts
    long_texts = [OutboundSms(f"care:2026-11:+1415555{n:04d}", PhoneNumber(f"+1415555{n:04d}"), "x" * 200,
                              MessageKind.CARE) for n in range(1, 11)]
    for m in long_texts:
        await w.text("LOVE", m.to.e164)
    await w.deliver()
    w.sms.times.clear()
    await queue(w, *long_texts)
    await w.deliver(Lane.BROADCAST)
    assert len(w.sms.times) == 10
    span = w.sms.times[-1] - w.sms.times[0]
    assert span >= 1.5  # ten texts of two segments at 10 segments a second (one-segment texts: under 1)


async def test_a_429_with_retry_after_pauses_the_lane_and_costs_no_attempt() -> None:
    w = World()
    await members(w, 1)
    w.sms.fail_next(SendResult(accepted=False, error="HTTP 429", transient=True, retry_after=30, throttled=True))
    await w.deliver(Lane.BROADCAST)
    (entry,) = w.store.messages(DeliveryStatus.PENDING)
    assert (entry.attempts, entry.next_attempt_at) == (0, w.clock.now() + timedelta(seconds=30))
    assert await w.deliver(Lane.BROADCAST) == 0
    assert w.pacer.paused_for(Lane.BROADCAST) == 30
    w.clock.advance(30)
    await w.deliver(Lane.BROADCAST)
    assert [e.status for e in w.store.messages() if e.message.kind is MessageKind.CARE] == [DeliveryStatus.SENT]
    assert w.store.messages(DeliveryStatus.SENT)[-1].attempts == 1


async def test_a_transient_failure_backs_off_and_counts_an_attempt() -> None:
    w = World()
    await members(w, 1)
    w.sms.fail_next(SendResult(accepted=False, error="HTTP 503", transient=True))
    await w.deliver(Lane.BROADCAST)
    (entry,) = w.store.messages(DeliveryStatus.PENDING)
    assert (entry.attempts, entry.error, entry.next_attempt_at) == (1, "HTTP 503", w.clock.now() + timedelta(seconds=2))


async def test_a_provider_outage_of_an_hour_loses_nothing() -> None:
    w = World()
    await members(w, 5)
    w.sms.fail_next(*[SendResult(accepted=False, error="network error", transient=True)] * 60)
    for _ in range(14):
        await w.deliver()
        w.clock.advance(300)
    await w.deliver()
    assert {e.status for e in w.store.messages() if e.message.kind is MessageKind.CARE} == {DeliveryStatus.SENT}
    assert len([m for m in w.sms.sent if m.kind is MessageKind.CARE]) == 5


async def test_the_daily_cap_counts_every_text_and_holds_the_broadcast_lane_until_the_next_day() -> None:
    w = World(send_settings=SendSettings(quiet_hours=QuietHours.none(), consent_poll_seconds=0, daily_cap=8))
    await members(w, 5)  # five join links sent today
    await w.deliver(Lane.BROADCAST)
    assert len(w.sms.sent) == 3
    await w.text("HELP", OTHER)
    await w.deliver()
    assert [m.kind for m in w.sms.sent][-1] is MessageKind.HELP  # answers still go
    w.clock.advance(24 * 3600)
    await w.deliver()
    assert [m.kind for m in w.sms.sent].count(MessageKind.CARE) == 5


async def test_an_opt_out_after_queueing_wins_at_send_time() -> None:
    w = World()
    await members(w, 1)
    phone = w.store.messages(DeliveryStatus.PENDING)[0].message.to.e164
    await w.text("STOP", phone)
    await w.deliver()
    assert [m.kind for m in w.sms.sent] == [MessageKind.OPT_OUT_CONFIRMATION]
    (held,) = [e for e in w.store.messages() if e.message.kind is MessageKind.CARE]
    assert (held.status, held.error) == (DeliveryStatus.SUPPRESSED, "not sent: consent is opted_out")


async def test_an_opt_out_during_a_long_wait_for_the_pace_wins_too() -> None:
    w = paced(0.2)
    messages = await members(w, 1)
    deliverer = w.deliverer(Lane.BROADCAST)
    lease = w.lease.lease(w.clock.now())
    now = w.clock.now()
    (claimed,) = await w.store.transaction(lambda tx: deliverer.claim(tx, lease, now, 1))
    w.pacer.pause(Lane.BROADCAST, 10)
    await w.text("STOP", messages[0].to.e164)
    delivery = await deliverer.perform(claimed)
    assert delivery.result is None and delivery.held_back is not None
    assert delivery.held_back.status is DeliveryStatus.SUPPRESSED


async def test_a_join_link_whose_link_expired_is_dropped_as_expired() -> None:
    w = World()
    w.sms.fail_next(SendResult(accepted=False, error="HTTP 503", transient=True))
    await w.text("LOVE")
    await w.deliver()
    w.clock.advance(3601)
    await w.deliver()
    (entry,) = w.store.messages()
    assert (entry.status, entry.error, len(w.sms.sent)) == (
        DeliveryStatus.EXPIRED, "not sent: the link in it had expired", 0)


async def test_a_raising_sender_fails_its_message_alone() -> None:
    class Raising(FakeSmsSender):
        async def send(self, message: OutboundSms) -> SendResult:
            if message.to.e164 == OTHER:
                raise RuntimeError("boom")
            return await super().send(message)

    w = World()
    w.sms = Raising()
    w.outbox = {lane: w._worker(w.deliverer(lane), 8) for lane in Lane}
    await w.text("HELP", OTHER)
    await w.text("HELP", PHONE)
    await w.deliver()
    statuses = {e.message.to.e164: (e.status, e.error) for e in w.store.messages()}
    assert statuses[PHONE][0] is DeliveryStatus.SENT
    assert statuses[OTHER] == (DeliveryStatus.FAILED, "sender raised RuntimeError: boom")


async def lapsed_claim(w: World) -> OutboundSms:
    """A message claimed by a worker that died before recording an outcome, its lease now over."""
    (message,) = await members(w, 1)
    dead = Lease("dead-worker", w.clock.now() + timedelta(seconds=30))
    now = w.clock.now()
    await w.store.transaction(lambda tx: tx.outbox.claim(Lane.BROADCAST, dead, now, 10))
    assert await w.deliver(Lane.BROADCAST) == 0  # still leased
    w.clock.advance(31)
    return message


async def test_a_message_in_doubt_that_the_provider_has_is_recorded_sent_without_sending_again() -> None:
    w = World()
    message = await lapsed_claim(w)
    w.sms.lookups[message.id] = LookupResult(Lookup.FOUND, provider_id="bird-77")
    await w.deliver(Lane.BROADCAST)
    (entry,) = w.store.messages(DeliveryStatus.SENT)[-1:]
    assert (entry.provider_id, entry.possible_duplicate, w.sms.sent) == ("bird-77", False, [])


async def test_a_message_in_doubt_that_the_provider_never_got_is_sent_once() -> None:
    w = World()
    message = await lapsed_claim(w)
    w.sms.lookups[message.id] = LookupResult(Lookup.NOT_FOUND)
    await w.deliver(Lane.BROADCAST)
    assert [m.id for m in w.sms.sent] == [message.id]
    assert w.store.state.outbox[message.id].possible_duplicate is False


async def test_a_message_in_doubt_the_provider_cannot_say_about_is_sent_and_counted_as_possible_duplicate() -> None:
    w = World()
    message = await lapsed_claim(w)
    await w.deliver(Lane.BROADCAST)
    assert w.sms.looked_up == [message.id]
    entry = w.store.state.outbox[message.id]
    assert (entry.status, entry.possible_duplicate, entry.in_doubt) == (DeliveryStatus.SENT, True, False)


async def test_a_lookup_the_provider_cannot_answer_now_is_asked_again_later_without_sending() -> None:
    w = World()
    message = await lapsed_claim(w)
    w.sms.lookups[message.id] = LookupResult(Lookup.UNKNOWN, error="HTTP 503", transient=True)
    await w.deliver(Lane.BROADCAST)
    entry = w.store.state.outbox[message.id]
    assert (entry.status, entry.in_doubt, w.sms.sent) == (DeliveryStatus.PENDING, True, [])


async def test_only_the_holder_of_the_broadcast_lease_sends_the_broadcast_lane() -> None:
    w = World()
    await members(w, 2)
    now = w.clock.now()

    def other_instance_takes_it(tx: Transaction) -> bool:
        return tx.leases.take(BROADCAST_LEASE, "other-instance", now, now + timedelta(seconds=30))

    assert await w.store.transaction(other_instance_takes_it)
    assert await w.deliver(Lane.BROADCAST) == 0
    await w.text("HELP", OTHER)
    assert await w.deliver(Lane.PRIORITY) == 1
    w.clock.advance(31)
    assert await w.deliver(Lane.BROADCAST) == 2


def _inbound(provider_id: str, text: str) -> InboundSms:
    return InboundSms(provider_id, PhoneNumber(PHONE), text)


async def test_a_send_whose_connection_failed_is_looked_up_before_it_is_sent_again() -> None:
    w = World()
    (message,) = await members(w, 1)
    w.sms.fail_next(SendResult(accepted=False, error="network error: ReadError", transient=True,
                               maybe_delivered=True))
    await w.deliver(Lane.BROADCAST)
    assert w.store.state.outbox[message.id].in_doubt is True
    w.sms.lookups[message.id] = LookupResult(Lookup.FOUND, provider_id="bird-9")
    w.clock.advance(2)
    await w.deliver(Lane.BROADCAST)
    entry = w.store.state.outbox[message.id]
    assert (entry.status, entry.provider_id, w.sms.sent) == (DeliveryStatus.SENT, "bird-9", [])


async def test_an_opt_out_between_claim_and_send_wins_without_any_wait() -> None:
    w = World()
    messages = await members(w, 1)
    deliverer = w.deliverer(Lane.BROADCAST)
    lease, now = w.lease.lease(w.clock.now()), w.clock.now()
    (claimed,) = await w.store.transaction(lambda tx: deliverer.claim(tx, lease, now, 1))
    await w.text("STOP", messages[0].to.e164)
    delivery = await deliverer.perform(claimed)
    assert delivery.result is None and delivery.held_back is not None
    assert delivery.held_back.status is DeliveryStatus.SUPPRESSED
    assert [m.kind for m in w.sms.attempts] == []


async def test_only_texts_to_a_number_whose_consent_changed_are_checked_again() -> None:
    w = World()
    messages = await members(w, 3)
    deliverer = w.deliverer(Lane.BROADCAST)
    lease, now = w.lease.lease(w.clock.now()), w.clock.now()
    (first,) = await w.store.transaction(lambda tx: deliverer.claim(tx, lease, now, 1))
    await deliverer.perform(first)  # the sender has read the consent history up to now
    second, third = await w.store.transaction(lambda tx: deliverer.claim(tx, lease, now, 2))
    await w.text("LOVE", "+14155559999")  # someone else joins
    await w.text("STOP", messages[2].to.e164)
    commits = w.store.commits

    sent, held = await deliverer.perform(second), await deliverer.perform(third)

    assert sent.result is not None and sent.result.accepted
    assert held.held_back is not None and held.held_back.status is DeliveryStatus.SUPPRESSED
    assert w.store.commits == commits + 1  # one read for the number that opted out, none for the other


async def test_a_refusal_because_the_person_opted_out_at_the_provider_records_the_opt_out_and_stops_sending() -> None:
    w = World()
    await members(w, 2)
    w.sms.fail_next(SendResult(accepted=False, error="HTTP 400: Twilio 21610: unsubscribed", opted_out=True))
    await w.deliver()
    (refused,) = w.store.messages(DeliveryStatus.FAILED)
    (other,) = [e for e in w.store.messages(DeliveryStatus.SENT) if e.message.kind is MessageKind.CARE]
    assert refused.attempts == 1 and "21610" in (refused.error or "")
    assert w.store.subscriber(refused.message.to.e164).opted_out
    assert w.store.state.history[-1][1].reason == "opted out at provider"
    assert not w.store.subscriber(other.message.to.e164).opted_out
    await queue(w, OutboundSms("welcome:pay-1", refused.message.to, "Welcome!", MessageKind.WELCOME))
    await w.deliver()
    assert w.store.state.outbox["welcome:pay-1"].status is DeliveryStatus.SUPPRESSED
    assert [m.to for m in w.sms.attempts].count(refused.message.to) == 1
