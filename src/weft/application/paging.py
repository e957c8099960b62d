"""Keyset pagination for every admin list: a page of items and an opaque cursor for the next one, so a list of a
hundred thousand members is read a page at a time and never with OFFSET."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from weft.domain.errors import InvalidCursor

T = TypeVar("T")
MAX_LIMIT = 500


@attrs.frozen
class Position:
    """Where a list stands: the sort value of the last item shown (a time, or None for lists ordered by key
    alone) and its key, which breaks ties."""

    at: datetime | None
    key: str

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat() if self.at else None, self.key], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            return cls(datetime.fromisoformat(at) if at is not None else None, str(key))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor("the cursor is not one this list handed out; start again without it") from None


@attrs.frozen
class Page(Generic[T]):
    items: list[T]
    next: str | None = None
    """The cursor of the following page; None on the last page."""


def after_of(cursor: str | None) -> Position | None:
    return None if not cursor else Position.decode(cursor)


def page_of(rows: list[T], limit: int, position: Callable[[T], Position]) -> Page[T]:
    """A page from up to `limit + 1` rows read in order: the extra row only says that another page follows."""
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Page(items, position(items[-1]).encode() if more else None)


def limit_of(raw: str | None, default: int = 50) -> int:
    """A page size a caller asked for, within 1..MAX_LIMIT."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidCursor(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw[:20]!r}")
    return int(raw)


def in_memory_page(items: Iterable[T], position: Callable[[T], Position], newest_first: bool,
                   after: Position | None, limit: int) -> Page[T]:
    """The same page from a list in memory (the fakes), ordered as the SQL views order theirs."""
    by_key = sorted(items, key=lambda item: position(item).key)
    ordered = sorted(by_key, key=lambda item: _sort_value(position(item)), reverse=newest_first)
    if after is not None:
        ordered = [item for item in ordered if _beyond(position(item), after, newest_first)]
    return page_of(ordered[:limit + 1], limit, position)


def _sort_value(p: Position) -> float:
    return p.at.timestamp() if p.at is not None else 0.0


def _beyond(p: Position, after: Position, newest_first: bool) -> bool:
    if p.at is None or after.at is None:
        return p.key < after.key if newest_first else p.key > after.key
    if p.at != after.at:
        return p.at < after.at if newest_first else p.at > after.at
    return p.key > after.key
