from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import attrs

_WINDOW = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-3]):([0-5]\d)$")
_SEARCH_STEP = timedelta(minutes=15)
_SEARCH_SPAN = timedelta(hours=48)


@attrs.frozen
class QuietHours:
    """Local hours in which no broadcast text is sent, e.g. 21:00-09:00; start == end means none."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Read "HH:MM-HH:MM"; ValueError names the expected form."""
        found = _WINDOW.match(text.strip())
        if found is None:
            raise ValueError(f"quiet hours must look like 21:00-09:00, not {text!r}")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        return cls(time(h1, m1), time(h2, m2))

    @classmethod
    def none(cls) -> QuietHours:
        return cls(time(0, 0), time(0, 0))

    @property
    def active(self) -> bool:
        return self.start != self.end

    def is_quiet(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, at: datetime, zones: Sequence[str]) -> datetime:
        """The earliest moment from `at` that is outside quiet hours in every zone. Where no such moment exists
        within two days (zones half a world apart), the earliest that is outside quiet hours in the most zones."""
        if self.start == self.end or not zones:
            return at
        return _next_allowed(self, at.replace(second=0, microsecond=0), tuple(zones)) if self._quiet_somewhere(
            at, zones) else at

    def _quiet_somewhere(self, at: datetime, zones: Sequence[str]) -> bool:
        return any(self.is_quiet(at.astimezone(_zone(z)).time()) for z in zones)

    def _window_end(self, at: datetime, zone: str) -> datetime:
        """When the quiet spell that `at` falls in ends, in that zone's local time."""
        local = at.astimezone(_zone(zone))
        end = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=local.tzinfo)
        return end.astimezone(at.tzinfo)


@lru_cache(maxsize=4096)
def _next_allowed(quiet: QuietHours, at: datetime, zones: tuple[str, ...]) -> datetime:
    # Cached by minute: a monthly run asks for the same few zone sets over and over within the same minutes.
    candidate = at
    for _ in range(2 * len(zones) + 2):
        quiet_zones = [z for z in zones if quiet.is_quiet(candidate.astimezone(_zone(z)).time())]
        if not quiet_zones:
            return candidate
        candidate = max(quiet._window_end(candidate, z) for z in quiet_zones)
    return _most_zones_allowed(quiet, at, zones)


def _most_zones_allowed(quiet: QuietHours, at: datetime, zones: tuple[str, ...]) -> datetime:
    best, best_allowed = at, -1
    candidate = at
    while candidate < at + _SEARCH_SPAN:
        allowed = sum(not quiet.is_quiet(candidate.astimezone(_zone(z)).time()) for z in zones)
        if allowed > best_allowed:
            best, best_allowed = candidate, allowed
        candidate += _SEARCH_STEP
    return best


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
