from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import requests
from pyairtable import Api

from weft.adapters.airtable.fields import (
    NUMBER_FIELDS,
    PAYMENT_FIELDS,
    PHONE,
    SESSION,
    number_fields,
    number_row,
    payment_fields,
    payment_row,
    schema_problems,
)
from weft.application.pacing import RateLimit
from weft.application.ports import BaseNumberRow, BasePaymentRow
from weft.domain.errors import MirrorRejected, MirrorUnavailable
from weft.domain.payment import Payment
from weft.domain.subscriber import Subscriber

log = logging.getLogger(__name__)
T = TypeVar("T")

THROTTLED_PAUSE_SECONDS = 30.0
"""Airtable answers 429 for 30 seconds after a base goes over 5 requests a second, and asks clients to wait."""
BATCH = 10
TIMEOUT = (5, 30)


class RequestWindow:
    """No more than `rate` requests in any second, counted when each request is actually made (on its worker
    thread, just before it goes out), with a margin: pacing on the event loop alone lets a request that waited for
    its thread arrive right behind the next one."""

    def __init__(self, rate: float, margin: float = 0.05, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._size = max(1, int(rate))
        self._span = self._size / rate + margin
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque(maxlen=self._size)
        self._lock = threading.Lock()

    def take(self) -> None:
        """Wait (on this thread) until a request may go out, then count it."""
        with self._lock:
            if len(self._sent) == self._size and (wait := self._sent[0] + self._span - self._clock()) > 0:
                self._sleep(wait)
            self._sent.append(self._clock())


class AirtableBase:
    """OrganiserBase over Airtable's REST API through pyairtable: at most `limit` requests a second to the base
    (pyairtable itself does not throttle), no retries of its own (the mirror queue retries, and a retried upsert is
    harmless), every call made on a worker thread so the event loop never waits on `requests`."""

    def __init__(self, api_key: str, base_id: str, numbers_table: str, payments_table: str, limit: RateLimit,
                 api_url: str = "https://api.airtable.com") -> None:
        self._api = Api(api_key, timeout=TIMEOUT, retry_strategy=False, endpoint_url=api_url)
        self._base_id, self._limit = base_id, limit
        self._window = RequestWindow(limit.rate)
        self._numbers = self._api.table(base_id, numbers_table)
        self._payments = self._api.table(base_id, payments_table)
        self._tables = {numbers_table: NUMBER_FIELDS, payments_table: PAYMENT_FIELDS}

    async def upsert_numbers(self, subscribers: Sequence[Subscriber]) -> None:
        records = [{"fields": number_fields(s)} for s in subscribers[:BATCH]]
        await self._call(lambda: self._numbers.batch_upsert(records, key_fields=[PHONE], typecast=True))

    async def upsert_payments(self, payments: Sequence[Payment]) -> None:
        records = [{"fields": payment_fields(p)} for p in payments[:BATCH]]
        await self._call(lambda: self._payments.batch_upsert(records, key_fields=[SESSION], typecast=True))

    async def read_numbers(self) -> list[BaseNumberRow]:
        return [number_row(r) for r in await self._read_all(self._numbers.iterate)]

    async def read_payments(self) -> list[BasePaymentRow]:
        return [payment_row(r) for r in await self._read_all(self._payments.iterate)]

    async def check(self) -> list[str]:
        url = self._api.base(self._base_id).urls.tables
        schema = await self._call(lambda: self._api.request("GET", url))
        return schema_problems(schema.get("tables", []) if isinstance(schema, dict) else [], self._tables)

    async def _read_all(self, iterate: Callable[..., Iterator[list[Any]]]) -> list[Any]:
        """Every record, a page (100) per request, each request taking its turn under the limit."""
        pages = iterate(page_size=100)
        records: list[Any] = []
        while (page := await self._call(lambda: next(pages, None))) is not None:
            records.extend(page)
        return records

    async def _call(self, call: Callable[[], T]) -> T:
        await self._limit.acquire()
        try:
            return await asyncio.to_thread(self._paced, call)
        except requests.HTTPError as exc:
            raise self._refusal(exc) from None
        except requests.RequestException as exc:
            raise MirrorUnavailable(f"Airtable could not be reached: {type(exc).__name__}") from None

    def _paced(self, call: Callable[[], T]) -> T:
        self._window.take()
        return call()

    def _refusal(self, exc: requests.HTTPError) -> Exception:
        status = exc.response.status_code if exc.response is not None else 0
        detail = _detail(exc)
        if status == 429:
            self._limit.pause(THROTTLED_PAUSE_SECONDS)
            return MirrorUnavailable("Airtable asked us to slow down (429)", THROTTLED_PAUSE_SECONDS)
        if status >= 500:
            return MirrorUnavailable(f"Airtable failed ({status}): {detail}")
        return MirrorRejected(f"Airtable refused the request ({status}): {detail}")


def _detail(exc: requests.HTTPError) -> str:
    """Airtable's error type and message (`{"error": {"type", "message"}}` or `{"error": "NOT_FOUND"}`)."""
    try:
        error = exc.response.json().get("error") if exc.response is not None else None
    except ValueError:
        error = None
    if isinstance(error, dict):
        return f"{error.get('type', 'ERROR')}: {error.get('message', '')}".strip(": ")
    return str(error) if error else "no details"
