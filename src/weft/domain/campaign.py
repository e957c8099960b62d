from __future__ import annotations

import enum
from datetime import datetime

import attrs

from weft.domain.care import SkipReason


class CampaignState(enum.Enum):
    SELECTING = "selecting"
    """Walking the members and queueing a message for each eligible one."""
    SENDING = "sending"
    """Everyone is queued; the send pipeline is delivering."""
    FINISHED = "finished"
    """Nothing of this campaign is pending any more."""


@attrs.define
class Campaign:
    """One month's care message run: who was selected, who was skipped and why, and where the selection stands."""

    id: str
    month: str
    text: str
    created_at: datetime
    state: CampaignState = CampaignState.SELECTING
    cursor: str | None = None
    """The last number the current selection pass has handled; a restarted pass resumes after it."""
    selected: int = 0
    skipped: dict[str, int] = attrs.field(factory=dict)
    finished_at: datetime | None = None
    passes: int = 1

    def trigger(self, at: datetime) -> bool:
        """A second trigger in the month walks the members again, so a member who became eligible since gets
        the message; True when a new pass starts (one already selecting carries on)."""
        if self.state is CampaignState.SELECTING:
            return False
        self.state, self.cursor, self.finished_at = CampaignState.SELECTING, None, None
        self.selected, self.skipped = 0, {}
        self.passes += 1
        return True

    def selected_batch(self, last_phone: str, queued: int, skipped: dict[SkipReason, int]) -> None:
        """Record one batch of the selection walk."""
        self.cursor = last_phone
        self.selected += queued
        for reason, count in skipped.items():
            self.skipped[reason.value] = self.skipped.get(reason.value, 0) + count

    def selection_done(self) -> None:
        self.state = CampaignState.SENDING

    def finish(self, at: datetime) -> None:
        self.state, self.finished_at = CampaignState.FINISHED, at
