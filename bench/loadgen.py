"""A lean HTTP/1.1 load generator: N keep-alive connections on asyncio streams, one request in flight on each."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping

import attrs

MakeRequest = Callable[[], bytes]
"""Returns the next request as raw HTTP/1.1 bytes; called once per request, so bodies can be unique."""


@attrs.define
class RunResult:
    """What one timed run saw: completed requests, wall time, per-request latencies and response tallies."""

    seconds: float = 0.0
    latencies: list[float] = attrs.field(factory=list)
    statuses: Counter[int] = attrs.field(factory=Counter)
    marked: int = 0
    """Responses whose body contained the run's marker (e.g. b'"processed"')."""
    error_samples: list[str] = attrs.field(factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
        return ordered[rank] * 1000.0


def post_request(host: str, port: int, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """A JSON POST; `headers` are added after the standard ones (e.g. a signature)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def get_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")


async def run(
    host: str, port: int, make_request: MakeRequest, connections: int, seconds: float, marker: bytes | None = None
) -> RunResult:
    """Drive the server from `connections` keep-alive connections for `seconds`; connects before the clock starts."""
    streams = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(connections)))
    result = RunResult()
    started = time.perf_counter()
    deadline = started + seconds
    try:
        await asyncio.gather(*(_drive(reader, writer, make_request, deadline, result, marker)
                               for reader, writer in streams))
    finally:
        result.seconds = time.perf_counter() - started
        for _, writer in streams:
            writer.close()
    return result


async def fetch(host: str, port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(request)
        return await asyncio.wait_for(read_response(reader), timeout)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one Content-Length framed response (all the servers under test frame their responses so)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, await reader.readexactly(int(value))
    raise ValueError(f"response without Content-Length: {head[:200]!r}")


async def _drive(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, make_request: MakeRequest, deadline: float,
    result: RunResult, marker: bytes | None,
) -> None:
    while (start := time.perf_counter()) < deadline:
        writer.write(make_request())
        status, body = await read_response(reader)
        result.latencies.append(time.perf_counter() - start)
        result.statuses[status] += 1
        if marker is not None and marker in body:
            result.marked += 1
        if not 200 <= status < 300 and len(result.error_samples) < 5:
            result.error_samples.append(f"{status}: {body[:200].decode('utf-8', 'replace')}")
