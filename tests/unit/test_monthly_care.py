"""The monthly care message with fakes: who gets it, once per member per month, resumption, quiet hours,
the dry run and the scheduler's catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from tests.unit.harness import CARE_TEXT, World
from weft.application.monthly_care import CareSettings
from weft.domain.campaign import CampaignState
from weft.domain.care import CareMonth
from weft.domain.messages import DeliveryStatus, MessageKind
from weft.domain.quiet_hours import QuietHours
from weft.entrypoints.scheduler import MonthlyScheduler

MEMBER, LOVE_ONLY, STOPPED, UNPROVEN, PAYING = (
    "+14155550101", "+14155550102", "+14155550103", "+14155550104", "+14155550105")
MONTH = CareMonth("2026-11")


async def community() -> World:
    """A free member, a number that only texted LOVE, a member who then texted STOP, an unproven sign-up
    awaiting YES, and a proven monthly payer."""
    w = World()
    await w.sign_up("free", phone=MEMBER, token=w.token(MEMBER), email="a@example.org")
    await w.text("LOVE", LOVE_ONLY)
    await w.sign_up("free", phone=STOPPED, token=w.token(STOPPED), email="b@example.org")
    await w.text("STOP", STOPPED)
    await w.sign_up("free", phone=UNPROVEN, email="c@example.org")
    w.gateway.requests.clear()
    await w.sign_up("10", payment_type="monthly", phone=PAYING, token=w.token(PAYING), email="d@example.org")
    await w.pay(w.session_id(), phone=PAYING)
    await w.run_journeys()
    w.sms.sent.clear()
    return w


def care_sent(w: World) -> list[str]:
    return sorted(m.to.e164 for m in w.sms.sent if m.kind is MessageKind.CARE)


async def test_a_run_reaches_every_eligible_member_and_no_one_else() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER, PAYING]
    assert {m.text for m in w.sms.sent if m.kind is MessageKind.CARE} == {CARE_TEXT}


async def test_the_run_records_who_was_skipped_and_why_and_finishes_once_nothing_is_pending() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.run_campaigns()
    w.clock.advance(5)  # the campaign looks at its sends every 5 seconds
    await w.run_campaigns()
    summary = await w.views.campaign(MONTH.campaign_id)
    assert summary is not None
    assert summary.campaign.skipped == {"not_a_member": 1, "opted_out": 1, "no_consent": 1}
    assert (summary.campaign.state, summary.eligible, summary.sent, summary.pending) == (
        CampaignState.FINISHED, 2, 2, 0)
    assert "campaign.finished" in w.store.actions()


async def test_a_second_trigger_in_the_month_sends_nothing_more() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.run_campaigns()
    await w.start_care(MONTH)
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER, PAYING]
    summary = await w.views.campaign(MONTH.campaign_id)
    assert summary is not None and summary.campaign.passes == 2


async def test_a_member_who_joins_later_in_the_month_gets_it_once_at_the_next_trigger() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.run_campaigns()
    late = "+14155550109"
    await w.sign_up("free", phone=late, token=w.token(late), email="late@example.org")
    await w.run_journeys()
    for _ in range(2):
        await w.start_care(MONTH)
        await w.run_campaigns()
    assert care_sent(w) == [MEMBER, PAYING, late]


async def test_two_triggers_before_any_work_make_one_run() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.start_care(MONTH)
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER, PAYING]
    assert len(w.store.state.campaigns) == 1


async def test_a_selection_interrupted_mid_walk_resumes_after_its_last_batch() -> None:
    w = World(care=CareSettings(text=CARE_TEXT, quiet_hours=QuietHours.none(), batch=2, batches_per_run=1))
    phones = [f"+1415555{n:04d}" for n in range(7)]
    for phone in phones:
        await w.sign_up("free", phone=phone, token=w.token(phone), email=f"{phone[-4:]}@example.org")
    await w.run_journeys()
    w.sms.sent.clear()
    await w.start_care(MONTH)
    assert await w.campaigns.run_once() == 1  # one batch of two, then the worker "dies"
    (campaign, _) = w.store.state.campaigns[MONTH.campaign_id]
    assert (campaign.state, campaign.cursor) == (CampaignState.SELECTING, phones[1])
    await w.run_campaigns()
    assert care_sent(w) == phones
    assert len([e for e in w.store.messages() if e.message.kind is MessageKind.CARE]) == 7


async def test_a_member_who_texts_stop_mid_run_is_skipped_at_send_time() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.campaigns.drain()  # selected and queued, nothing sent yet
    await w.text("STOP", PAYING)
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER]
    held = w.store.state.outbox[MONTH.message_key(PAYING)]
    assert held.status is DeliveryStatus.SUPPRESSED


async def test_a_member_in_quiet_hours_waits_for_the_window_and_is_not_dropped() -> None:
    night = QuietHours.parse("21:00-09:00")
    w = World(care=CareSettings(text=CARE_TEXT, quiet_hours=night, batch=3))
    await w.sign_up("free", phone=MEMBER, token=w.token(MEMBER))
    await w.run_journeys()
    w.sms.sent.clear()
    w.clock.at = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # 22:00 in San Francisco
    await w.start_care(MONTH)
    await w.run_campaigns()
    assert care_sent(w) == []
    entry = w.store.state.outbox[MONTH.message_key(MEMBER)]
    assert (entry.status, entry.next_attempt_at) == (DeliveryStatus.PENDING, datetime(2026, 11, 2, 17, 0,
                                                                                       tzinfo=UTC))
    w.clock.at = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER]


async def test_the_dry_run_counts_and_lists_without_queueing_anything() -> None:
    w = await community()
    preview = await w.preview_care(MONTH)
    assert (preview.month, preview.eligible) == ("2026-11", 2)
    assert preview.skipped == {"not_a_member": 1, "opted_out": 1, "no_consent": 1}
    assert preview.recipients == ["+*******0101", "+*******0105"]
    assert [e for e in w.store.messages() if e.message.kind is MessageKind.CARE] == []
    assert w.store.state.campaigns == {}


async def test_the_dry_run_after_a_run_counts_the_members_as_already_sent() -> None:
    w = await community()
    await w.start_care(MONTH)
    await w.run_campaigns()
    preview = await w.preview_care(MONTH)
    assert (preview.eligible, preview.skipped["already_sent"]) == (0, 2)


async def test_the_dry_run_counts_members_in_quiet_hours_now() -> None:
    night = QuietHours.parse("21:00-09:00")
    w = World(care=CareSettings(text=CARE_TEXT, quiet_hours=night))
    await w.sign_up("free", phone=MEMBER, token=w.token(MEMBER))
    await w.run_journeys()
    w.clock.at = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    preview = await w.preview_care(MONTH)
    assert (preview.eligible, preview.skipped) == (0, {"quiet_hours": 1})


def scheduler(w: World, cron: str = "0 10 1 * *") -> MonthlyScheduler:
    return MonthlyScheduler(CronTrigger.from_crontab(cron, timezone=UTC), w.start_care, w.views, w.clock, "UTC")


async def test_a_service_that_was_down_on_the_first_runs_the_months_message_when_it_comes_back() -> None:
    w = await community()
    w.clock.at = datetime(2026, 11, 14, 8, 0, tzinfo=UTC)
    assert await scheduler(w).catch_up() is True
    await w.run_campaigns()
    assert care_sent(w) == [MEMBER, PAYING]


async def test_the_catch_up_does_nothing_before_the_months_time_or_after_the_run() -> None:
    w = await community()
    w.clock.at = datetime(2026, 11, 1, 9, 59, tzinfo=UTC)
    assert await scheduler(w).catch_up() is False
    w.clock.at += timedelta(minutes=2)
    assert await scheduler(w).catch_up() is True
    assert await scheduler(w).catch_up() is False


async def test_the_scheduler_schedules_the_next_run_at_ten_on_the_first_in_its_time_zone() -> None:
    w = World()
    w.clock.at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # before the month's time: no catch-up
    monthly = MonthlyScheduler(CronTrigger.from_crontab("0 10 1 * *", timezone=ZoneInfo("America/New_York")),
                               w.start_care, w.views, w.clock, "America/New_York")
    await monthly.start()
    try:
        next_run = monthly.next_run()  # APScheduler reads the real clock
        assert next_run is not None and next_run > datetime.now(UTC)
        local = next_run.astimezone(ZoneInfo("America/New_York"))
        assert (local.day, local.hour, local.minute) == (1, 10, 0)
        assert w.store.state.campaigns == {}
    finally:
        monthly.stop()
    assert monthly.next_run() is None


async def test_the_scheduler_runs_the_provider_sync_on_its_interval_and_survives_a_failing_run() -> None:
    w = World()
    w.clock.at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    runs: list[str] = []

    async def sync() -> None:
        runs.append("sync")
        raise RuntimeError("Bird answered HTTP 503")

    monthly = MonthlyScheduler(CronTrigger.from_crontab("0 10 1 * *", timezone=UTC), w.start_care, w.views,
                               w.clock, "UTC", sync=sync, sync_minutes=15)
    await monthly.start()
    try:
        job = monthly._scheduler.get_job("provider-sync") if monthly._scheduler else None
        assert job is not None and job.trigger.interval == timedelta(minutes=15)
        await monthly.sync()  # what the job runs: the failure is logged, not raised
        assert runs == ["sync"]
    finally:
        monthly.stop()
    off = MonthlyScheduler(CronTrigger.from_crontab("0 10 1 * *", timezone=UTC), w.start_care, w.views, w.clock,
                           "UTC", sync=sync, sync_minutes=0)
    await off.start()
    try:
        assert off._scheduler is not None and off._scheduler.get_job("provider-sync") is None
    finally:
        off.stop()
