"""The operational alerts: SMS delivery falling below its floor, and a care message run that stalled."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

import attrs

from weft.application.ports import Clock, EmailSender
from weft.application.unit_of_work import Store, Transaction
from weft.application.views import Views
from weft.domain.alerts import Alert, AlertKind, CampaignWatch, delivery_rate_summary
from weft.domain.campaign import CampaignState
from weft.domain.messages import OutboundEmail

log = logging.getLogger(__name__)


@attrs.frozen
class AlertSettings:
    email: str = ""
    """Where notifications go (WEFT_ALERT_EMAIL); empty: they are only logged."""
    min_success_rate: float = 0.95
    min_messages: int = 20
    stall_minutes: int = 15
    daily_cap: int | None = None
    """The SMS daily cap: a run that reached it waits for the next day on purpose."""
    time_zone: str = "UTC"
    """Where the daily cap's day starts."""
    watched_campaigns: int = 3
    retry_horizon: timedelta = timedelta(minutes=5)
    """The longest a transient fault puts a text back (the send RetryPolicy's max_delay): a text retrying within it
    is waiting for the provider, one put back further is waiting for quiet hours to end."""


@attrs.frozen
class _Notice:
    alert: Alert
    previous: datetime | None


class CheckAlerts:
    """Check delivery and the care runs, keep each kind of alert's state in the store, and notify (an error in
    the log, an email to WEFT_ALERT_EMAIL) at most once an hour per kind across every process on the database;
    returns the alerts active now.

    Delivery: of the SMS queued in the last hour, fewer than `min_success_rate` taken by the provider and not
    reported failed, with at least `min_messages` attempted.
    Stalled campaign: a run not finished whose progress (texts selected plus texts no longer pending) has not
    moved for `stall_minutes` while it is still selecting, or has texts it could send now (due, or retrying after
    a failed attempt within `retry_horizon`); its clock starts when it could first send. A run waiting on purpose
    is not stalled: all its pending texts held until quiet hours end (not due yet), or the daily cap reached for
    today. A provider pause (429) or outage longer than `stall_minutes` is reported, since nothing moves.

    A notification is claimed in the store before it is sent, so it goes at most once per hour and kind; one
    that fails is logged and its claim given back, so the next check tries again.
    """

    def __init__(self, views: Views, email: EmailSender, clock: Clock, settings: AlertSettings,
                 store: Store) -> None:
        self._views, self._email, self._clock, self._settings, self._store = views, email, clock, settings, store

    async def __call__(self) -> list[Alert]:
        now = self._clock.now()
        counts = await self._views.sms_outcome_counts(now - timedelta(hours=1))
        watched = await self._watched(now)
        delivery = delivery_rate_summary(counts["sent"] + counts["delivered"], counts["failed"],
                                         self._settings.min_success_rate, self._settings.min_messages)
        alerts, notices = await self._store.transaction(lambda tx: self._update(tx, delivery, watched, now))
        for notice in notices:
            await self._notify(notice, now)
        return [a for a in alerts if a.active]

    async def _watched(self, now: datetime) -> list[CampaignWatch]:
        watched = []
        for summary in (await self._views.campaigns(limit=self._settings.watched_campaigns)).items:
            campaign = summary.campaign
            if campaign.state is CampaignState.FINISHED:
                continue
            sendable = await self._views.campaign_sendable(campaign.id, now, now + self._settings.retry_horizon)
            watched.append(CampaignWatch(campaign.id, campaign.selected + summary.eligible - summary.pending,
                                         campaign.state is CampaignState.SELECTING, sendable, summary.pending))
        return watched

    def _update(self, tx: Transaction, delivery: str | None, watched: list[CampaignWatch],
                now: datetime) -> tuple[list[Alert], list[_Notice]]:
        rate, stall = tx.alerts.get(AlertKind.DELIVERY_RATE), tx.alerts.get(AlertKind.CAMPAIGN_STALLED)
        rate.update(delivery, now)
        limit = timedelta(minutes=self._settings.stall_minutes)
        stall.update(stall.stalled_campaigns(watched, self._cap_reached(tx, now), limit, now), now)
        notices = []
        for alert in (rate, stall):
            previous = alert.notified_at
            if alert.claim_notification(now):
                notices.append(_Notice(alert, previous))
            tx.alerts.save(alert)
        return [rate, stall], notices

    def _cap_reached(self, tx: Transaction, now: datetime) -> bool:
        cap = self._settings.daily_cap
        day = now.astimezone(ZoneInfo(self._settings.time_zone)).date().isoformat()
        return cap is not None and tx.outbox.count_sent(day) >= cap

    async def _notify(self, notice: _Notice, now: datetime) -> None:
        alert = notice.alert
        log.error("alert %s: %s", alert.kind.value, alert.summary)
        if not self._settings.email:
            return
        try:
            result = await self._email.send(alert_email(alert, self._settings.email))
            error = None if result.accepted else result.error
        except Exception as exc:  # a bug in a sender must not stop the next check from trying again
            error = f"the email sender raised {type(exc).__name__}"
        if error is None:
            return
        log.error("the alert email for %s could not be sent (%s); the next check tries again", alert.kind.value,
                  error)
        await self._store.transaction(lambda tx: _give_back(tx, alert.kind, now, notice.previous))


def _give_back(tx: Transaction, kind: AlertKind, claimed_at: datetime, previous: datetime | None) -> None:
    alert = tx.alerts.get(kind)
    alert.notification_failed(claimed_at, previous)
    tx.alerts.save(alert)


SUBJECTS = {AlertKind.DELIVERY_RATE: "SMS delivery is failing",
            AlertKind.CAMPAIGN_STALLED: "a care message run stalled"}


def alert_email(alert: Alert, to: str) -> OutboundEmail:
    """The notification for an active alert: what is wrong and since when (no numbers, no settings)."""
    since = alert.since.isoformat(timespec="minutes") if alert.since else "now"
    paragraphs = [alert.summary + ".", f"Active since {since} (UTC). Weft sends this at most once an hour while "
                  "it lasts; the admin overview shows it until it clears."]
    stamp = f"{alert.notified_at:%Y%m%dT%H%M%S}" if alert.notified_at else "now"
    return OutboundEmail(
        id=f"alert-{alert.kind.value}-{stamp}", to=to, subject=f"Weft alert: {SUBJECTS[alert.kind]}",
        text="\n\n".join(paragraphs),
        html="<!doctype html><html><body>" + "".join(f"<p>{escape(p)}</p>" for p in paragraphs) + "</body></html>",
    )
