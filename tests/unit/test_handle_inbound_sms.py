from __future__ import annotations

import pytest

from tests.fakes import FixedClock, InMemoryStore
from weft.application.handle_inbound_sms import HandleInboundSms, InboundOutcome, KeywordSettings
from weft.application.replies import Replies
from weft.domain.messages import InboundSms, MessageKind
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership

PHONE = "+14155550123"


class Harness:
    def __init__(self, settings: KeywordSettings | None = None) -> None:
        self.store = InMemoryStore()
        self.wakes = 0
        self.counter = 0
        self.handle = HandleInboundSms(
            self.store, FixedClock(), Replies(public_url="https://weft.example"),
            settings or KeywordSettings(), on_queued=self._woken,
        )

    def _woken(self) -> None:
        self.wakes += 1

    async def text(
        self, body: str, provider_id: str | None = None, conversation_id: str | None = None
    ) -> InboundOutcome:
        self.counter += 1
        message = InboundSms(provider_id or f"in-{self.counter}", PhoneNumber(PHONE), body,
                             conversation_id=conversation_id)
        return await self.handle(message)

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
    assert h.replies() == ["Thanks for joining The Weft! Click here: https://weft.example/?phone=%2B14155550123"]
    assert h.wakes == 1


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


async def test_an_opted_out_number_gets_no_help_reply(h: Harness) -> None:
    await h.text("STOP")
    await h.text("HELP")
    await h.text("what is this?")
    assert h.kinds() == [MessageKind.OPT_OUT_CONFIRMATION]


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
        "You have been successfully unsubscribed. You are now free tier user. Thank you for being part of The Weft!"
    )


async def test_help_names_program_support_frequency_rates_and_stop(h: Harness) -> None:
    await h.text("info")
    (reply,) = h.replies()
    for part in ("The Weft", "support@example.org", "a month", "Msg & data rates may apply.", "Reply STOP"):
        assert part in reply


async def test_any_other_text_is_stored_without_a_reply(h: Harness) -> None:
    await h.text("hello there")
    assert h.store.subscriber(PHONE).last_message == "hello there"
    assert h.store.subscriber(PHONE).consent is Consent.NONE
    assert h.replies() == []
    assert h.wakes == 0


async def test_a_redelivered_message_is_processed_once(h: Harness) -> None:
    assert await h.text("LOVE", provider_id="same") is InboundOutcome.PROCESSED
    assert await h.text("LOVE", provider_id="same") is InboundOutcome.DUPLICATE
    assert len(h.replies()) == 1


async def test_provider_keyword_replies_setting_keeps_state_changes_but_sends_none_of_ours() -> None:
    h = Harness(KeywordSettings(provider_sends_keyword_replies=True))
    await h.text("STOP")
    await h.text("START")
    await h.text("HELP")
    await h.text("LOVE")
    assert h.store.subscriber(PHONE).consent is Consent.SUBSCRIBED
    assert h.kinds() == [MessageKind.JOIN_LINK]
    assert len(h.store.state.history) == 2


async def test_reply_goes_back_into_the_same_conversation(h: Harness) -> None:
    await h.text("LOVE", conversation_id="conv-9")
    assert h.store.messages()[0].message.conversation_id == "conv-9"


async def test_consent_history_records_which_message_changed_it(h: Harness) -> None:
    await h.text("LOVE", provider_id="a")
    await h.text("STOP", provider_id="b")
    assert [(c.consent, c.message_id) for _, c in h.store.state.history] == [
        (Consent.SUBSCRIBED, "a"), (Consent.OPTED_OUT, "b"),
    ]
