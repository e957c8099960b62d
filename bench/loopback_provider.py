"""A loopback Bird Channels API: accepts sends with 202 and counts what it received.

- `POST /workspaces/{w}/channels/{c}/messages` accepts a send (202 `{"id", "status": "accepted"}`), counting it by
  its `reference` (Weft's outbox key) and recording when it came; with `--max-per-second R` a token bucket refuses
  what exceeds R a second with 429 and `Retry-After`, as Bird does, and such a send counts as throttled only.
- `GET /workspaces/{w}/channels/{c}/messages?reference=X` lists the accepted sends with that reference
  (`{"results": [{"id", "reference", "status"}]}`, empty when none), as Weft asks about a send a crash left in doubt.
- `GET /stats`: the tallies (duplicates, throttled, first and last accepted send), overall and by reference prefix
  (`care`, `reply`: the part before the first colon).
- `GET /times?prefix=care`: the time (Unix seconds) of each accepted send with that prefix, in arrival order.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DUPLICATE_SAMPLES = 5


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Prefix:
    """Accepted sends whose reference starts with one prefix."""

    def __init__(self) -> None:
        self.accepted = 0
        self.references = 0
        self.times: list[float] = []

    def stats(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "references": self.references,
                "first_at": self.times[0] if self.times else None, "last_at": self.times[-1] if self.times else None}


class Received:
    """Tally of channel messages: every request, the accepted ones by reference, and the distinct recipients."""

    def __init__(self, limit: TokenBucket | None = None) -> None:
        self.requests = 0
        self.throttled = 0
        self.lookups = 0
        self.accepted: dict[str, list[str]] = {}
        """Reference -> the ids of the accepted sends carrying it (more than one is a duplicate)."""
        self.duplicates: list[str] = []
        """References accepted more than once, each listed once."""
        self.recipients: set[str] = set()
        self.prefixes: dict[str, Prefix] = {}
        self._limit = limit

    async def send_message(self, request: Request) -> Response:
        message = json.loads(await request.body())
        self.requests += 1
        if self._limit is not None and (wait := self._limit.take()) > 0:
            self.throttled += 1
            return JSONResponse({"code": "TooManyRequests", "message": "rate limit exceeded"}, status_code=429,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        reference = str(message.get("reference"))
        message_id = uuid.uuid4().hex
        ids = self.accepted.setdefault(reference, [])
        ids.append(message_id)
        if len(ids) == 2:
            self.duplicates.append(reference)
        self.recipients.add(str(message["receiver"]["contacts"][0]["identifierValue"]))
        prefix = self.prefixes.setdefault(reference.partition(":")[0], Prefix())
        prefix.accepted += 1
        prefix.references += len(ids) == 1
        prefix.times.append(time.time())
        return JSONResponse({"id": message_id, "status": "accepted"}, status_code=202)

    async def list_messages(self, request: Request) -> Response:
        self.lookups += 1
        reference = request.query_params.get("reference")
        ids = self.accepted.get(reference, []) if reference is not None else []
        results = [{"id": message_id, "reference": reference, "status": "accepted"} for message_id in ids]
        return JSONResponse({"results": results, "nextPageToken": None})

    async def stats(self, request: Request) -> Response:
        # Kept up as sends arrive, so polling the stats costs the provider (and the CPUs it shares) next to nothing.
        accepted = sum(prefix.accepted for prefix in self.prefixes.values())
        times = [t for prefix in self.prefixes.values() for t in (prefix.times[:1] + prefix.times[-1:])]
        return JSONResponse({
            "requests": self.requests,
            "accepted": accepted,
            "throttled": self.throttled,
            "references": len(self.accepted),
            "recipients": len(self.recipients),
            "duplicates": len(self.duplicates),
            "duplicate_samples": self.duplicates[:DUPLICATE_SAMPLES],
            "lookups": self.lookups,
            "first_at": min(times) if times else None,
            "last_at": max(times) if times else None,
            "by_prefix": {key: prefix.stats() for key, prefix in self.prefixes.items()},
        })

    async def times(self, request: Request) -> Response:
        prefix = self.prefixes.get(request.query_params.get("prefix", ""))
        return JSONResponse({"times": prefix.times if prefix is not None else []})


class AirtableRows:
    """Airtable's upsert (`PATCH /v0/{base}/{table}` with performUpsert), for runs with the organisers' copy on:
    counts the writes and the distinct keys written."""

    def __init__(self) -> None:
        self.writes = 0
        self.records = 0
        self.keys: set[str] = set()
        self.times: list[float] = []

    async def upsert(self, request: Request) -> Response:
        body = json.loads(await request.body())
        merge = body["performUpsert"]["fieldsToMergeOn"][0]
        self.writes += 1
        self.times.append(time.time())
        self.records += len(body["records"])
        self.keys.update(str(r["fields"][merge]) for r in body["records"])
        rows = [{"id": f"rec{uuid.uuid4().hex[:14]}", "createdTime": "2026-01-01T00:00:00.000Z",
                 "fields": r["fields"]} for r in body["records"]]
        return JSONResponse({"records": rows, "createdRecords": [r["id"] for r in rows], "updatedRecords": []})

    async def stats(self, request: Request) -> Response:
        window = [t for t in self.times if t >= (self.times[-1] - 10 if self.times else 0)]
        return JSONResponse({"writes": self.writes, "records": self.records, "keys": len(self.keys),
                             "writes_per_second_last_10s": round(len(window) / 10, 2)})


def create_provider_app(received: Received, airtable: AirtableRows | None = None) -> Starlette:
    airtable = airtable or AirtableRows()
    return Starlette(routes=[
        Route("/v0/{base}/{table}", airtable.upsert, methods=["PATCH"]),
        Route("/airtable-stats", airtable.stats, methods=["GET"]),
        Route("/workspaces/{workspace}/channels/{channel}/messages", received.send_message, methods=["POST"]),
        Route("/workspaces/{workspace}/channels/{channel}/messages", received.list_messages, methods=["GET"]),
        Route("/stats", received.stats, methods=["GET"]),
        Route("/times", received.times, methods=["GET"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description="loopback Bird Channels API for the benchmarks in bench/")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-per-second", type=float, default=0.0,
                        help="refuse sends beyond this rate with 429 and Retry-After (0: accept everything)")
    parser.add_argument("--burst", type=float, default=0.0,
                        help="token bucket size for --max-per-second (default: a tenth of a second's worth, >= 1)")
    args = parser.parse_args()
    limit = None
    if args.max_per_second > 0:
        limit = TokenBucket(args.max_per_second, args.burst or max(1.0, args.max_per_second / 10))
    # No access log: the provider shares the CPUs with the server under test and should cost as little as it can.
    uvicorn.run(create_provider_app(Received(limit)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
