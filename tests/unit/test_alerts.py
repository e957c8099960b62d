"""The alert check: the delivery floor, the stall rule, and notifying at most once an hour per kind."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from apscheduler.triggers.cron import CronTrigger

from tests.fakes import FakeEmailSender, FixedClock, InMemoryStore, InMemoryViews
from weft.application.alerts import AlertSettings, CheckAlerts
from weft.application.unit_of_work import Transaction
from weft.config import ConfigError, Settings, load_settings
from weft.containers import Container
from weft.domain.alerts import AlertKind
from weft.domain.campaign import Campaign, CampaignState
from weft.domain.messages import DeliveryStatus, MessageKind, OutboundSms, SendResult
from weft.domain.phone import PhoneNumber
from weft.entrypoints.scheduler import MonthlyScheduler

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CAMPAIGN = "care-2026-12"


@attrs.define
class World:
    store: InMemoryStore
    clock: FixedClock
    emails: FakeEmailSender

    def check(self, **settings: object) -> CheckAlerts:
        options = {"email": "ops@example.org", **settings}
        return CheckAlerts(InMemoryViews(self.store, self.clock), self.emails, self.clock,
                           AlertSettings(**options), self.store)  # type: ignore[arg-type]

    async def texts(self, count: int, status: DeliveryStatus, kind: MessageKind = MessageKind.HELP,
                    due: datetime | None = None, prefix: str = "m") -> None:
        messages = [OutboundSms(id=f"{prefix}{i}", to=PhoneNumber(f"+1415555{i:04d}"), text="hello", kind=kind,
                                campaign_id=CAMPAIGN if kind is MessageKind.CARE else None) for i in range(count)]

        def write(tx: Transaction) -> None:
            tx.outbox.enqueue_many([(m, due or self.clock.now()) for m in messages], self.clock.now())
            if status is not DeliveryStatus.PENDING:
                entries = [tx.outbox.get(m.id) for m in messages]
                tx.outbox.record([attrs.evolve(e, status=status, attempts=1, sent_at=self.clock.now(),
                                               next_attempt_at=None) for e in entries if e is not None])

        await self.store.transaction(write)

    async def put_back(self, due: datetime) -> None:
        """Every pending text was tried and failed, and waits until `due`."""
        def write(tx: Transaction) -> None:
            entries = [e for e in self.store.state.outbox.values() if e.status is DeliveryStatus.PENDING]
            tx.outbox.record([attrs.evolve(e, attempts=e.attempts + 1, first_attempt_at=NOW, next_attempt_at=due)
                              for e in entries])

        await self.store.transaction(write)

    async def campaign(self, state: CampaignState = CampaignState.SENDING, selected: int = 0) -> None:
        campaign = Campaign(id=CAMPAIGN, month="2026-12", text="care", created_at=NOW, state=state, selected=selected)
        await self.store.transaction(lambda tx: tx.campaigns.save(campaign))


@pytest.fixture
def world() -> World:
    return World(InMemoryStore(), FixedClock(NOW), FakeEmailSender())


async def test_a_low_delivery_rate_is_logged_as_an_error_and_emailed(world: World,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    await world.texts(18, DeliveryStatus.SENT)
    await world.texts(2, DeliveryStatus.FAILED, prefix="f")

    with caplog.at_level(logging.ERROR):
        active = await world.check()()

    assert [(a.kind, a.since) for a in active] == [(AlertKind.DELIVERY_RATE, NOW)]
    assert "90.0%" in active[0].summary
    (email,) = world.emails.sent
    assert (email.to, email.subject) == ("ops@example.org", "Weft alert: SMS delivery is failing")
    assert any("alert delivery_rate" in m and "90.0%" in m for m in caplog.messages)


async def test_too_few_texts_raise_no_delivery_alert(world: World) -> None:
    await world.texts(19, DeliveryStatus.FAILED)

    assert await world.check()() == []
    assert world.emails.sent == []


async def test_texts_queued_more_than_an_hour_ago_do_not_count(world: World) -> None:
    await world.texts(20, DeliveryStatus.FAILED)
    world.clock.advance(3601)

    assert await world.check()() == []


async def test_the_alert_stays_until_delivery_recovers_and_then_clears(world: World) -> None:
    await world.texts(20, DeliveryStatus.FAILED)
    check = world.check()
    await check()
    world.clock.advance(600)
    assert [a.since for a in await InMemoryViews(world.store, world.clock).active_alerts()] == [NOW]

    await world.texts(400, DeliveryStatus.SENT, prefix="ok")
    assert await check() == []
    assert await InMemoryViews(world.store, world.clock).active_alerts() == []


async def test_an_alert_that_lasts_is_emailed_again_only_after_an_hour(world: World) -> None:
    await world.texts(20, DeliveryStatus.FAILED)
    check = world.check(min_messages=1)
    for _ in range(60):
        await check()
        world.clock.advance(60)
    assert len(world.emails.sent) == 1

    await world.texts(1, DeliveryStatus.FAILED, prefix="late")  # the first twenty have left the hour's window
    await check()
    assert len(world.emails.sent) == 2


async def test_a_failed_alert_email_is_tried_again_at_the_next_check_and_sent_once(world: World) -> None:
    await world.texts(20, DeliveryStatus.FAILED)
    world.emails.fail_next(SendResult(accepted=False, error="HTTP 503", transient=True))
    check = world.check()

    await check()
    assert world.emails.sent == []
    world.clock.advance(60)
    await check()
    world.clock.advance(60)
    await check()

    assert len(world.emails.sent) == 1


async def test_without_an_alert_email_the_alert_is_only_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    await world.texts(20, DeliveryStatus.FAILED)

    with caplog.at_level(logging.ERROR):
        active = await world.check(email="")()

    assert [a.kind for a in active] == [AlertKind.DELIVERY_RATE]
    assert world.emails.sent == [] and any("alert delivery_rate" in m for m in caplog.messages)


async def test_a_campaign_whose_due_texts_do_not_move_for_the_stall_time_raises_an_alert(world: World) -> None:
    await world.campaign()
    await world.texts(5, DeliveryStatus.PENDING, MessageKind.CARE)
    check = world.check(stall_minutes=15)

    await check()
    world.clock.advance(14 * 60)
    assert await check() == []
    world.clock.advance(60)
    (alert,) = await check()

    assert alert.kind is AlertKind.CAMPAIGN_STALLED
    assert alert.summary == f"campaign {CAMPAIGN} has not moved for 15 minutes (sending, 5 texts pending)"
    assert [e.subject for e in world.emails.sent] == ["Weft alert: a care message run stalled"]
    assert "+1415" not in world.emails.sent[0].text


async def test_a_campaign_that_keeps_sending_is_not_stalled(world: World) -> None:
    await world.campaign()
    await world.texts(50, DeliveryStatus.PENDING, MessageKind.CARE)
    check = world.check(stall_minutes=15)
    for minute in range(30):
        await world.texts(1, DeliveryStatus.SENT, MessageKind.CARE, prefix=f"sent{minute}-")
        assert await check() == []
        world.clock.advance(60)


async def test_a_campaign_waiting_for_quiet_hours_to_end_is_not_stalled(world: World) -> None:
    await world.campaign()
    await world.texts(5, DeliveryStatus.PENDING, MessageKind.CARE, due=NOW + timedelta(hours=9))
    check = world.check(stall_minutes=15)

    for _ in range(4):
        assert await check() == []
        world.clock.advance(3600)


async def test_a_campaign_held_by_the_daily_cap_is_not_stalled(world: World) -> None:
    await world.campaign()
    await world.texts(5, DeliveryStatus.PENDING, MessageKind.CARE)
    await world.store.transaction(lambda tx: tx.outbox.add_sent("2026-12-01", 100))
    check = world.check(stall_minutes=15, daily_cap=100)

    for _ in range(4):
        assert await check() == []
        world.clock.advance(15 * 60)


async def test_a_selection_that_stops_moving_is_stalled(world: World) -> None:
    await world.campaign(CampaignState.SELECTING, selected=200)
    check = world.check(stall_minutes=15)

    await check()
    world.clock.advance(15 * 60)

    assert [a.kind for a in await check()] == [AlertKind.CAMPAIGN_STALLED]


async def test_a_finished_campaign_is_never_stalled(world: World) -> None:
    await world.campaign(CampaignState.FINISHED)
    await world.texts(5, DeliveryStatus.PENDING, MessageKind.CARE)
    check = world.check(stall_minutes=15)

    await check()
    world.clock.advance(3600)
    assert await check() == []


async def test_a_failing_alert_check_leaves_the_next_check_scheduled(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    async def failing() -> None:
        calls.append(1)
        raise RuntimeError("database gone")

    monthly = CronTrigger.from_crontab("0 10 1 * *", timezone=UTC)
    views = InMemoryViews(InMemoryStore(), FixedClock(NOW))
    scheduler = MonthlyScheduler(monthly, None, views, FixedClock(NOW), "UTC",  # type: ignore[arg-type]
                                 alerts=failing, alert_seconds=60)
    with caplog.at_level(logging.ERROR):
        await scheduler.check_alerts()
        await scheduler.check_alerts()

    assert len(calls) == 2
    assert caplog.messages == ["checking the alerts failed; the next check tries again"] * 2


def test_the_alert_settings_have_their_defaults() -> None:
    s = load_settings({}, env_file=None)
    assert (s.alert_email, s.alert_min_success_rate, s.alert_min_messages, s.alert_stall_minutes,
            s.alert_check_seconds, s.metrics_public) == ("", 0.95, 20, 15, 60, False)


@pytest.mark.parametrize(("name", "value"), [
    ("WEFT_ALERT_MIN_SUCCESS_RATE", "95%"), ("WEFT_ALERT_MIN_SUCCESS_RATE", "1.5"), ("WEFT_ALERT_MIN_MESSAGES", "0"),
    ("WEFT_ALERT_MIN_MESSAGES", "many"), ("WEFT_ALERT_STALL_MINUTES", "-1"), ("WEFT_ALERT_CHECK_SECONDS", "1m"),
    ("WEFT_ALERT_EMAIL", "ops at example.org"), ("WEFT_METRICS_PUBLIC", "maybe"),
])
def test_a_malformed_alert_or_metrics_setting_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)



async def test_a_text_that_failed_and_then_waits_for_quiet_hours_does_not_stall_its_campaign(world: World) -> None:
    await world.campaign()
    await world.texts(3, DeliveryStatus.PENDING, MessageKind.CARE)
    await world.put_back(NOW + timedelta(hours=9))
    check = world.check(stall_minutes=15)

    for _ in range(4):
        assert await check() == []
        world.clock.advance(3600)


async def test_a_campaign_whose_texts_keep_failing_for_the_stall_time_raises_an_alert(world: World) -> None:
    await world.campaign()
    await world.texts(3, DeliveryStatus.PENDING, MessageKind.CARE)
    check = world.check(stall_minutes=15)
    found = []
    for _ in range(16):
        await world.put_back(world.clock.now() + timedelta(minutes=4))  # the provider is down: tried, put back
        found = await check()
        world.clock.advance(60)

    assert [a.kind for a in found] == [AlertKind.CAMPAIGN_STALLED]


def test_the_container_builds_the_alert_check_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'weft.db'}", alert_email="ops@example.org",
                        alert_stall_minutes=30, sms_daily_cap=500, time_zone="America/New_York")
    container = Container(settings=settings)
    alert_settings = container.alert_settings()

    assert isinstance(container.check_alerts(), CheckAlerts)
    assert alert_settings == AlertSettings(email="ops@example.org", stall_minutes=30, daily_cap=500,
                                           time_zone="America/New_York", retry_horizon=timedelta(minutes=5))
