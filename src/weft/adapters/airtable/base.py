from __future__ import annotations

import asyncio
import logging
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


class AirtableBase:
    """OrganiserBase over Airtable's REST API through pyairtable: at most `limit` requests a second to the base
    (pyairtable itself does not throttle), no retries of its own (the mirror queue retries, and a retried upsert is
    harmless), every call made on a worker thread so the event loop never waits on `requests`."""

    def __init__(self, api_key: str, base_id: str, numbers_table: str, payments_table: str, limit: RateLimit,
                 api_url: str = "https://api.airtable.com") -> None:
        self._api = Api(api_key, timeout=TIMEOUT, retry_strategy=False, endpoint_url=api_url)
        self._base_id, self._limit = base_id, limit
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
            return await asyncio.to_thread(call)
        except requests.HTTPError as exc:
            raise self._refusal(exc) from None
        except requests.RequestException as exc:
            raise MirrorUnavailable(f"Airtable could not be reached: {type(exc).__name__}") from None

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
