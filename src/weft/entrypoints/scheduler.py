from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from weft.application.monthly_care import StartMonthlyCare
from weft.application.ports import Clock
from weft.application.views import Views
from weft.domain.care import CareMonth

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 27 * 24 * 3600
"""A run delayed within the process (a busy loop, a suspended machine) still happens that month."""


class MonthlyScheduler:
    """APScheduler 3 in the event loop fires the monthly care run on its cron line. Every instance may fire; the
    database makes it one run (the month's campaign is created once, its work claimed under a lease). APScheduler's
    own job store is in memory, so a service that was down when the month's run was due runs it when it comes
    back that month: at start, when this month's fire time has passed and no run exists for the month."""

    def __init__(self, trigger: CronTrigger, start_monthly_care: StartMonthlyCare, views: Views, clock: Clock,
                 time_zone: str, sync: Callable[[], Awaitable[object]] | None = None, sync_minutes: int = 0,
                 alerts: Callable[[], Awaitable[object]] | None = None, alert_seconds: int = 0) -> None:
        self._trigger, self._start, self._views, self._clock = trigger, start_monthly_care, views, clock
        self._zone = ZoneInfo(time_zone)
        self._scheduler: AsyncIOScheduler | None = None
        self._sync, self._sync_minutes = sync, sync_minutes
        self._alerts, self._alert_seconds = alerts, alert_seconds

    async def start(self) -> None:
        """Schedule the job (inside the running event loop, as APScheduler 3 requires) and catch up."""
        self._scheduler = AsyncIOScheduler(timezone=self._zone)
        self._scheduler.add_job(self.fire, self._trigger, id="monthly-care", coalesce=True, max_instances=1,
                                misfire_grace_time=MISFIRE_GRACE_SECONDS)
        if self._sync is not None and self._sync_minutes > 0:
            self._scheduler.add_job(self.sync, IntervalTrigger(minutes=self._sync_minutes, timezone=self._zone),
                                    id="provider-sync", coalesce=True, max_instances=1)
        if self._alerts is not None and self._alert_seconds > 0:
            self._scheduler.add_job(self.check_alerts, IntervalTrigger(seconds=self._alert_seconds,
                                                                       timezone=self._zone),
                                    id="alert-check", coalesce=True, max_instances=1)
        self._scheduler.start()
        await self.catch_up()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def next_run(self) -> datetime | None:
        job = self._scheduler.get_job("monthly-care") if self._scheduler else None
        return None if job is None else job.next_run_time

    async def catch_up(self) -> bool:
        """Fire now when this month's scheduled time has passed without a run; True when it fired."""
        now = self._clock.now().astimezone(self._zone)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        due = self._trigger.get_next_fire_time(None, month_start)
        month = CareMonth.of(now)
        if due is None or due > now or CareMonth.of(due) != month:
            return False
        if await self._views.campaign(month.campaign_id) is not None:
            return False
        log.info("this month's care message was due at %s and has not run: starting it now", due.isoformat())
        await self.fire()
        return True

    async def sync(self) -> None:
        """The provider automation sync (every WEFT_SYNC_INTERVAL_MINUTES); a failure waits for the next run."""
        if self._sync is None:
            return
        try:
            await self._sync()
        except Exception:
            log.exception("the provider automation sync failed; the next run goes on from the same cursor")

    async def check_alerts(self) -> None:
        """The alert check (every WEFT_ALERT_CHECK_SECONDS); a failure waits for the next run."""
        if self._alerts is None:
            return
        try:
            await self._alerts()
        except Exception:
            log.exception("checking the alerts failed; the next check tries again")

    async def fire(self) -> None:
        try:
            summary = await self._start()
        except Exception:  # the next fire, or a restart, tries again; the scheduler must keep running
            log.exception("starting the monthly care message failed")
            return
        log.info("monthly care message %s: %s, %d queued", summary.campaign.id, summary.campaign.state.value,
                 summary.eligible)
