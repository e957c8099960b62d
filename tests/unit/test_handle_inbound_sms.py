from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import pytest

from tests.fakes import FixedClock, InMemoryStore
from weft.application.handle_inbound_sms import (
    Applied,
    ApplyKeywords,
    HandleInboundSms,
    InboundOutcome,
    InboundWakeups,
    KeywordSettings,
    ProcessInboundSms,
)
from weft.application.replies import Replies
from weft.application.unit_of_work import StoreError, Transaction
from weft.application.work_queue import StepWorker
from weft.domain.messages import InboundSms, MessageKind
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership

PHONE = "+14155550123"
T = TypeVar("T")
OTHER = "+14155550199"


class Harness:
    def __init__(self, settings: KeywordSettings | None = None, apply: type[ApplyKeywords] = ApplyKeywords,
                 batch_size: int = 64) -> None:
        self.store = InMemoryStore()
        self.wakes: Counter[str] = Counter()
        self.counter = 0
        keywords = apply(Replies(public_url="https://weft.example"), settings or KeywordSettings())
        wakeups = InboundWakeups(received=lambda: self.wakes.update(["inbound"]),
                                 queued=lambda: self.wakes.update(["outbox"]),
                                 cancelling=lambda: self.wakes.update(["cancellations"]))
        self.handle = HandleInboundSms(self.store, FixedClock(), keywords, wakeups)
        self.worker = StepWorker("inbound", ProcessInboundSms(self.store, FixedClock(), keywords, wakeups,
                                                              batch_size=batch_size))

    async def receive(self, body: str, provider_id: str | None = None, reply_route: str | None = None,
                      phone: str = PHONE) -> InboundOutcome:
        """The webhook stores the text; the inbound worker has not run yet."""
        self.counter += 1
        message = InboundSms(provider_id or f"in-{self.counter}", PhoneNumber(phone), body,
                             reply_route=reply_route)
        return await self.handle(message)

    async def text(self, body: str, provider_id: str | None = None, reply_route: str | None = None,
                   phone: str = PHONE) -> InboundOutcome:
        """The webhook stores the text and the inbound worker applies what is waiting."""
        outcome = await self.receive(body, provider_id, reply_route, phone)
        await self.worker.drain()
        return outcome

    def replies(self) -> list[str]:
        return [e.message.text for e in self.store.messages()]

    def kinds(self) -> list[MessageKind]:
        return [e.message.kind for e in self.store.messages()]


@pytest.fixture
def h() -> Harness:
    return Harness()


async def test_love_subscribes_the_number_and_replies_with_its_prefilled_link(h: Harness) -> None:
    await h.text("love!")
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.replies() == ["Thanks for joining Community Weft! Click here: https://weft.example/?phone=%2B14155550123"]
    assert h.wakes == {"inbound": 1, "outbox": 1}


async def test_stop_opts_out_and_confirms_exactly_once(h: Harness) -> None:
    await h.text("LOVE")
    await h.text("STOP", provider_id="stop-1")
    await h.text(" stop. ")
    member = h.store.subscriber(PHONE)
    assert member.consent is Consent.OPTED_OUT
    assert member.consent_message_id == "stop-1"
    assert h.kinds() == [MessageKind.JOIN_LINK, MessageKind.OPT_OUT_CONFIRMATION]
    assert h.replies()[1] == (
        "You have been successfully unsubscribed. You will no longer receive messages. Reply LOVE to rejoin."
    )


async def test_an_opted_out_number_gets_help_that_says_how_to_rejoin_and_nothing_else(h: Harness) -> None:
    await h.text("STOP")
    await h.text("HELP")
    await h.text("what is this?")
    await h.text("stop")
    await h.text("INFO")
    assert h.kinds() == [MessageKind.OPT_OUT_CONFIRMATION, MessageKind.HELP, MessageKind.HELP]
    assert h.replies()[1] == (
        "Community Weft: you have opted out and get no messages from us. Support: support@example.org. "
        "Reply LOVE or START to rejoin."
    )
    assert h.store.subscriber(PHONE).consent is Consent.OPTED_OUT


async def test_love_after_stop_opts_the_number_back_in(h: Harness) -> None:
    await h.text("STOP")
    await h.text("LOVE")
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.kinds() == [MessageKind.OPT_OUT_CONFIRMATION, MessageKind.JOIN_LINK]


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
async def test_opt_in_words_resubscribe_an_opted_out_number(h: Harness, word: str) -> None:
    await h.text("STOP")
    await h.text(word)
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.kinds()[-1] is MessageKind.OPT_IN_CONFIRMATION


async def test_yes_from_a_subscribed_number_is_just_a_message(h: Harness) -> None:
    await h.text("LOVE")
    await h.text("yes")
    assert h.kinds() == [MessageKind.JOIN_LINK]
    assert h.store.subscriber(PHONE).last_message == "yes"


async def test_unsub_leaves_paid_membership_but_keeps_messages(h: Harness) -> None:
    await h.text("LOVE")
    member = h.store.state.subscribers[PHONE]
    member.membership, member.paid_tier = Membership.PAID, "10"
    await h.text("UNSUB")
    member = h.store.subscriber(PHONE)
    assert (member.membership, member.paid_tier, member.consent) == (Membership.FREE, None, Consent.SUBSCRIBED)
    assert h.replies()[-1] == (
        "You have been successfully unsubscribed. You are now a free member. "
        "Thank you for being part of Community Weft!"
    )


async def test_help_names_program_support_frequency_rates_and_stop(h: Harness) -> None:
    await h.text("info")
    (reply,) = h.replies()
    for part in ("Community Weft", "support@example.org", "a month", "Msg & data rates may apply.", "Reply STOP"):
        assert part in reply


async def test_any_other_text_is_stored_without_a_reply(h: Harness) -> None:
    await h.text("hello there")
    assert h.store.subscriber(PHONE).last_message == "hello there"
    assert h.store.subscriber(PHONE).consent is Consent.NONE
    assert h.replies() == []
    assert h.wakes == {"inbound": 1}


async def test_a_redelivered_message_is_processed_once(h: Harness) -> None:
    assert await h.text("LOVE", provider_id="same") is InboundOutcome.RECEIVED
    assert await h.text("LOVE", provider_id="same") is InboundOutcome.DUPLICATE
    assert await h.text("STOP", provider_id="stop") is InboundOutcome.PROCESSED
    assert await h.text("STOP", provider_id="stop") is InboundOutcome.DUPLICATE
    assert h.kinds() == [MessageKind.JOIN_LINK, MessageKind.OPT_OUT_CONFIRMATION]
    assert h.wakes == {"inbound": 1, "outbox": 2}


async def test_provider_keyword_replies_setting_keeps_state_changes_but_sends_none_of_ours() -> None:
    h = Harness(KeywordSettings(provider_sends_keyword_replies=True))
    await h.text("STOP")
    await h.text("START")
    await h.text("HELP")
    await h.text("LOVE")
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.kinds() == [MessageKind.JOIN_LINK]
    assert len(h.store.state.history) == 2


async def test_reply_keeps_the_inbound_texts_reply_route(h: Harness) -> None:
    await h.text("LOVE", reply_route="conversation=conv-9")
    assert h.store.messages()[0].message.reply_route == "conversation=conv-9"


async def test_consent_history_records_which_message_changed_it(h: Harness) -> None:
    await h.text("LOVE", provider_id="a")
    await h.text("STOP", provider_id="b")
    assert [(c.consent, c.message_id) for _, c in h.store.state.history] == [
        (Consent.SUBSCRIBED, "a"), (Consent.OPTED_OUT, "b"),
    ]


async def test_a_text_is_stored_at_once_and_applied_by_the_inbound_worker(h: Harness) -> None:
    assert await h.receive("LOVE", provider_id="m1") is InboundOutcome.RECEIVED
    assert (h.store.state.subscribers, h.replies(), h.wakes) == ({}, [], {"inbound": 1})
    assert [m.provider_id for m, _ in h.store.state.inbound.values()] == ["m1"]
    assert await h.worker.drain() == 1
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.kinds() == [MessageKind.JOIN_LINK]
    assert await h.worker.drain() == 0


async def test_stop_is_applied_before_the_answer_after_the_numbers_earlier_waiting_texts(h: Harness) -> None:
    await h.receive("LOVE", provider_id="love")
    await h.receive("hello", provider_id="other", phone=OTHER)
    assert await h.receive("STOP", provider_id="stop") is InboundOutcome.PROCESSED
    member = h.store.subscriber(PHONE)
    assert member.consent is Consent.OPTED_OUT
    assert [(c.consent, c.message_id) for _, c in h.store.state.history] == [
        (Consent.SUBSCRIBED, "love"), (Consent.OPTED_OUT, "stop"),
    ]
    assert OTHER not in h.store.state.subscribers  # another number's text waits for the worker
    assert await h.worker.drain() == 1
    assert h.store.subscriber(OTHER).last_message == "hello"


async def test_the_worker_applies_texts_in_the_order_they_arrived_across_batches() -> None:
    h = Harness(batch_size=2)
    clock = FixedClock()
    for i, word in enumerate(["LOVE", "STOP", "START", "hi", "STOP"]):
        # Stored as the worker finds them after a restart: the STOPs were not applied on receipt.
        # Ids run against the order of arrival, so only the arrival time can put them right.
        message = InboundSms(f"m{9 - i}", PhoneNumber(PHONE), word)
        at = clock.now() + timedelta(seconds=i)
        await h.store.transaction(lambda tx, m=message, at=at: tx.inbound.record(m, at))
    assert await h.worker.drain() == 5
    assert [(c.consent, c.message_id) for _, c in h.store.state.history] == [
        (Consent.SUBSCRIBED, "m9"), (Consent.OPTED_OUT, "m8"), (Consent.SUBSCRIBED, "m7"), (Consent.OPTED_OUT, "m5"),
    ]
    assert h.store.subscriber(PHONE).last_message == "STOP"


def _fails_on(text: str) -> type[ApplyKeywords]:
    """ApplyKeywords with a bug: any batch holding `text` raises."""

    class FailsOn(ApplyKeywords):
        def __call__(self, tx: Transaction, messages: Sequence[InboundSms], now: datetime) -> Applied:
            if any(m.text == text for m in messages):
                raise RuntimeError(f"cannot apply {text}")
            return super().__call__(tx, messages, now)

    return FailsOn


async def test_a_text_that_cannot_be_applied_is_set_aside_and_the_others_go_on() -> None:
    h = Harness(apply=_fails_on("BOOM"))
    await h.receive("LOVE", provider_id="m1")
    await h.receive("BOOM", provider_id="m2", phone=OTHER)
    await h.receive("HELP", provider_id="m3")
    assert await h.worker.drain() == 3
    assert h.kinds() == [MessageKind.JOIN_LINK, MessageKind.HELP]
    assert h.store.state.inbound_errors == {"m2": "RuntimeError('cannot apply BOOM')"}
    assert h.store.state.unapplied == set()


async def test_an_opt_out_that_cannot_be_applied_at_once_is_still_stored_for_the_worker() -> None:
    h = Harness(apply=_fails_on("STOP"))
    assert await h.receive("STOP", provider_id="stop") is InboundOutcome.RECEIVED
    assert h.store.state.unapplied == {"stop"}
    assert h.wakes == {"inbound": 1}


class _StoreFailsOnce(InMemoryStore):
    """The database fails for the next transaction (a lost connection, a deadlock), then works again."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def transaction(self, work: Callable[[Transaction], T]) -> T:
        if self.fail_next:
            self.fail_next = False
            raise StoreError("server closed the connection unexpectedly")
        return await super().transaction(work)


async def test_a_database_failure_sets_nothing_aside_and_the_next_step_applies_the_text() -> None:
    h = Harness()
    h.store = store = _StoreFailsOnce()
    keywords = ApplyKeywords(Replies(public_url="https://weft.example"), KeywordSettings())
    h.handle = HandleInboundSms(store, FixedClock(), keywords, InboundWakeups())
    worker = StepWorker("inbound", ProcessInboundSms(store, FixedClock(), keywords, InboundWakeups()))
    await h.receive("LOVE", provider_id="m1")
    store.fail_next = True
    with pytest.raises(StoreError):
        await worker.drain()
    assert (store.state.unapplied, store.state.inbound_errors) == ({"m1"}, {})
    assert await worker.drain() == 1
    assert store.subscriber(PHONE).consent is Consent.SUBSCRIBED
