"""The provider sync use case against a scripted message history, and the delivery statistics."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.fakes import FixedClock, InMemoryStore
from weft.application.delivery_stats import Outcome, delivery_stats
from weft.application.handle_inbound_sms import ApplyKeywords, InboundWakeups, KeywordSettings
from weft.application.ports import HistoryPage
from weft.application.replies import Replies
from weft.application.sync_messages import SyncProviderMessages, SyncSettings
from weft.application.work_queue import LeaseSettings
from weft.domain.errors import ProviderUnavailable
from weft.domain.messages import InboundSms, MessageKind, ProviderSentSms
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent

PHONE = PhoneNumber("+14155550123")


class ScriptedHistory:
    """Pages of a provider's message history; `fail_at` raises on that page index."""

    def __init__(self, pages: list[HistoryPage], fail_at: int | None = None) -> None:
        self.pages, self.fail_at = pages, fail_at
        self.reads: list[tuple[datetime | None, str | None]] = []

    async def page(self, since: datetime | None, page_token: str | None) -> HistoryPage:
        self.reads.append((since, page_token))
        index = int(page_token or 0)
        if index == self.fail_at:
            raise ProviderUnavailable("Bird answered HTTP 503")
        return self.pages[index]


def page(*items: InboundSms | ProviderSentSms, next_page: str | None = None) -> HistoryPage:
    inbound = [i for i in items if isinstance(i, InboundSms)]
    sent = [i for i in items if isinstance(i, ProviderSentSms)]
    times = [i.received_at for i in inbound] + [i.sent_at for i in sent]
    return HistoryPage(inbound=inbound, sent=sent, fetched=len(items),
                       newest=max((t for t in times if t), default=None), next_page=next_page)


class Sync:
    def __init__(self, pages: list[HistoryPage], owner: str = "w-1", fail_at: int | None = None,
                 store: InMemoryStore | None = None, clock: FixedClock | None = None) -> None:
        self.store, self.clock = store or InMemoryStore(), clock or FixedClock()
        self.history = ScriptedHistory(pages, fail_at)
        apply = ApplyKeywords(Replies(public_url="https://example.org"), KeywordSettings())
        self.run = SyncProviderMessages(self.history, self.store, self.clock, apply, InboundWakeups(),
                                        LeaseSettings(owner), SyncSettings())

    def ago(self, minutes: float) -> datetime:
        return self.clock.now() - timedelta(minutes=minutes)


async def test_a_run_reads_every_page_and_keeps_the_newest_time_as_its_cursor() -> None:
    s = Sync([])
    s.history.pages = [
        page(InboundSms("b-1", PHONE, "LOVE", received_at=s.ago(30)), next_page="1"),
        page(ProviderSentSms("b-2", PHONE, "Hi from the flow", s.ago(29)), next_page="2"),
        page(InboundSms("b-3", PHONE, "hello", received_at=s.ago(5))),
    ]
    summary = await s.run()
    assert (summary.pages, summary.fetched, summary.new_inbound, summary.new_outbound, summary.keyword_changes) == \
        (3, 3, 2, 1, 1)
    assert s.store.state.cursors["sync:bird"] == s.ago(5).isoformat()
    assert s.store.subscriber(PHONE.e164).consent is Consent.SUBSCRIBED
    assert [e.message.kind for e in s.store.messages()] == [MessageKind.SENT_BY_PROVIDER]  # no late link

    again = Sync(s.history.pages, store=s.store, clock=s.clock)
    summary = await again.run()
    assert again.history.reads[0] == (s.ago(5) - timedelta(minutes=5), None)
    assert (summary.new_inbound, summary.new_outbound) == (0, 0)


async def test_a_failed_page_keeps_what_earlier_pages_recorded_and_leaves_the_cursor() -> None:
    s = Sync([], fail_at=1)
    s.history.pages = [page(InboundSms("b-1", PHONE, "STOP", received_at=s.ago(30)), next_page="1")]
    with pytest.raises(ProviderUnavailable):
        await s.run()
    assert s.store.subscriber(PHONE.e164).opted_out
    assert "sync:bird" not in s.store.state.cursors


async def test_a_second_process_does_not_sync_while_another_runs_it_and_may_once_it_finished() -> None:
    first = Sync([page()])
    now = first.clock.now()
    await first.store.transaction(lambda tx: tx.leases.take("sync:bird", "w-1", now, now + timedelta(seconds=20)))
    second = Sync([page()], owner="w-2", store=first.store, clock=first.clock)
    assert (await second.run()).busy
    assert second.history.reads == []
    await first.run()  # the holder runs it and lets go
    assert not (await second.run()).busy
    assert second.history.reads == [(None, None)]


def test_stats_count_each_outcome_per_hour_and_give_the_success_rate() -> None:
    now = datetime.fromisoformat("2026-11-01T12:30:00+00:00")
    outcomes = [Outcome("sms", now - timedelta(minutes=10), "delivered"),
                Outcome("sms", now - timedelta(minutes=20), "failed"),
                Outcome("sms", now - timedelta(hours=2), "sent"),
                Outcome("sms", now - timedelta(hours=2), "pending"),
                Outcome("email", now - timedelta(hours=1), "sent"),
                Outcome("sms", now - timedelta(hours=30), "failed")]  # outside the window
    stats = delivery_stats(outcomes, now, hours=24)
    assert stats["since"] == "2026-10-31T13:00:00+00:00" and stats["until"] == "2026-11-01T13:00:00+00:00"
    sms = stats["sms"]
    assert (sms["pending"], sms["sent"], sms["delivered"], sms["failed"]) == (1, 1, 1, 1)
    assert sms["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert [h["hour"] for h in sms["hourly"]][-3:] == [
        "2026-11-01T10:00:00+00:00", "2026-11-01T11:00:00+00:00", "2026-11-01T12:00:00+00:00"]
    assert (sms["hourly"][-1]["delivered"], sms["hourly"][-1]["failed"], sms["hourly"][-1]["success_rate"]) == \
        (1, 1, 0.5)
    assert sms["hourly"][-3]["success_rate"] == 1.0 and sms["hourly"][0]["success_rate"] is None
    assert stats["email"]["sent"] == 1 and stats["email"]["success_rate"] == 1.0
