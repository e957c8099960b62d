"""Operational alerts: what is wrong now, since when, and when the organisers were last told."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

NOTIFY_EVERY = timedelta(hours=1)
"""At most one notification per kind of alert in this long, however many processes check."""


class AlertKind(enum.Enum):
    DELIVERY_RATE = "delivery_rate"
    """Too few of the last hour's texts reached the provider or the phone."""
    CAMPAIGN_STALLED = "campaign_stalled"
    """A care message run stopped moving while it has texts it could send."""


@attrs.frozen
class CampaignWatch:
    """A care message run not finished yet, as the stall rule sees it."""

    id: str
    progress: int
    """Members selected in the current pass plus texts no longer pending: grows while the run moves."""
    selecting: bool
    sendable: int
    """Pending texts that could go now (due, or put back by a transient fault for a short backoff only)."""
    pending: int


@attrs.define
class Alert:
    """One kind of alert: whether it is active and what it says, when its notification last went out, and (for
    the stall rule) each watched campaign's progress and since when it has not moved."""

    kind: AlertKind
    active: bool = False
    summary: str = ""
    since: datetime | None = None
    checked_at: datetime | None = None
    notified_at: datetime | None = None
    progress: dict[str, tuple[int, datetime]] = attrs.field(factory=dict)

    def update(self, summary: str | None, at: datetime) -> None:
        """Raise the alert with this summary (kept active since it was first raised), or clear it with None."""
        if summary is None:
            self.active, self.summary, self.since = False, "", None
        else:
            self.since = self.since if self.active else at
            self.active, self.summary = True, summary
        self.checked_at = at

    def claim_notification(self, at: datetime) -> bool:
        """True when an active alert is due a notification (none in the last hour): it is taken as sent at `at`."""
        if not self.active or (self.notified_at is not None and at - self.notified_at < NOTIFY_EVERY):
            return False
        self.notified_at = at
        return True

    def notification_failed(self, claimed_at: datetime, previous: datetime | None) -> None:
        """The notification claimed at `claimed_at` did not go out: the next check may try again."""
        if self.notified_at == claimed_at:
            self.notified_at = previous

    def stalled_campaigns(self, watched: list[CampaignWatch], cap_reached: bool, limit: timedelta,
                          at: datetime) -> str | None:
        """The stall alert's text for the runs whose progress has not moved for `limit` while they could move
        (selecting, or with sendable texts and the daily cap not reached); None when every run moves or waits on
        purpose. A run's clock starts when it could first move: waiting on purpose forgets its progress."""
        moving = [w for w in watched if w.selecting or (w.sendable and not cap_reached)]
        self.progress = {k: v for k, v in self.progress.items() if k in {w.id for w in moving}}
        lines = []
        for w in moving:
            idle = at - self._stood_since(w.id, w.progress, at)
            if idle >= limit:
                lines.append(f"campaign {w.id} has not moved for {int(idle.total_seconds() // 60)} minutes "
                             f"({'still selecting' if w.selecting else 'sending'}, {w.pending} texts pending)")
        return "; ".join(lines) or None

    def _stood_since(self, campaign_id: str, progress: int, at: datetime) -> datetime:
        seen = self.progress.get(campaign_id)
        if seen is None or seen[0] != progress:
            seen = self.progress[campaign_id] = (progress, at)
        return seen[1]


def delivery_rate_summary(took: int, failed: int, min_rate: float, min_messages: int) -> str | None:
    """The delivery alert's text when, of at least `min_messages` attempted texts, fewer than `min_rate` were
    taken and not reported failed; None when delivery is healthy or there are too few texts to judge."""
    attempted = took + failed
    if attempted < min_messages or attempted == 0 or took / attempted >= min_rate:
        return None
    return (f"SMS delivery success rate over the last hour is {took / attempted:.1%} ({failed} of {attempted} "
            f"texts failed), below {min_rate:.0%}")
