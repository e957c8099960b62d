"""Inbound webhook throughput: `weft serve` (SQLite, Bird via a loopback provider) against a bare Starlette endpoint.

Usage: .venv/bin/python bench/inbound_webhook.py [--duration 10] [--warmup 3] [--connections 50] [--profile]
                                                 [--background process|inline] [--backend sqlite|postgres]
                                                 [--postgres-url URL] [--airtable]

Drives unique LOVE webhooks from distinct numbers at the Weft server, then the same bodies at a one-route
Starlette app run with the same uvicorn call, and reports both req/s, their ratio and the webhook latencies.
`weft serve` on SQLite runs background work inline (its default); `--background process` moves it to a `weft worker`.
`--backend postgres` runs Weft on a fresh schema of the PostgreSQL server instead (the issue's target is for SQLite).
`--airtable` turns the organisers' Airtable copy on (every number's copy queued with its change, pushed to the
loopback provider at Airtable's 5 requests a second), to measure what the copy costs the webhook.
Afterwards it checks every webhook was answered 2xx ("received"), stored once, applied by the inbound worker,
and replied to once at the provider.
A benchmark script, not a test: it exits 1 only when a correctness check fails, never on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import attrs
import httpx
import loadgen
import phonenumbers
from databases import DEFAULT_POSTGRES_URL, postgres_database, sqlite_database
from processes import Processes, exit_on_sigterm

from weft.adapters.sql.engine import create_engine

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RATIO_TARGET = 0.25
P99_TARGET_MS = 25.0
UVICORN_CALL = "uvicorn.run(app, host, port, log_config=None) after weft.bootstrap.configure_logging()"
CHANNEL_ID = "2b7c1e90-4f3a-4d8e-b1c2-9e0f7a6d5c43"
WEBHOOK_TEMPLATE = json.dumps({
    "service": "channels",
    "event": "sms.inbound",
    "payload": {
        "id": "@ID@",
        "channelId": CHANNEL_ID,
        "sender": {"contact": {"id": "c3e1b2a4-0d9f-4e7a-8b6c-5a4f3e2d1c0b", "identifierKey": "phonenumber",
                               "identifierValue": "@PHONE@"}},
        "receiver": {"connector": {"id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"}},
        "body": {"type": "text", "text": {"text": "LOVE"}},
        "status": "delivered",
        "direction": "incoming",
        "createdAt": "2025-01-01T12:00:00.123Z",
    },
})


@attrs.frozen
class Options:
    duration: float
    warmup: float
    connections: int
    drain_timeout: float
    profile: bool
    background: str
    backend: str
    postgres_url: str
    airtable: bool = False


@attrs.frozen
class Ports:
    weft: int
    bare: int
    provider: int


class InboundLove:
    """Request factory: each call is a LOVE webhook with a fresh Bird message id from the next distinct number."""

    FIRST_NUMBER = 2_000_000
    """+1 212 200-0000 upwards: all valid NANP numbers, checked by `check_numbers`."""

    def __init__(self, port: int, path: str = "/bird-sms-webhook") -> None:
        self._port = port
        self._path = path
        self.count = 0

    def phone(self, index: int) -> str:
        return f"+1212{self.FIRST_NUMBER + index:07d}"

    def __call__(self) -> bytes:
        body = WEBHOOK_TEMPLATE.replace("@ID@", str(uuid.uuid4())).replace("@PHONE@", self.phone(self.count))
        self.count += 1
        return loadgen.post_request(HOST, self._port, self._path, body.encode())

    def check_numbers(self, upto: int) -> None:
        """Fail fast if the number plan would hand the app an invalid number (it would answer 400)."""
        for index in range(0, upto, max(1, upto // 500)):
            if not phonenumbers.is_valid_number(phonenumbers.parse(self.phone(index))):
                raise RuntimeError(f"{self.phone(index)} is not a valid number; change InboundLove.FIRST_NUMBER")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_servers(processes: Processes, ports: Ports, workdir: Path, background: str, database: str,
                  airtable: bool = False) -> None:
    """Start provider, bare app and `weft serve` (with its worker unless inline) on the database at that URL."""
    python = sys.executable
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes.start("provider", [python, str(BENCH_DIR / "loopback_provider.py"), "--port", str(ports.provider)],
                    base_env, workdir)
    processes.start("bare", [python, str(BENCH_DIR / "bare_app.py"), "--host", HOST, "--port", str(ports.bare)],
                    base_env, workdir)
    extra = airtable_env(ports) if airtable else {}
    processes.start("weft", weft_serve(ports, background), {**base_env, **weft_env(ports, database), **extra},
                    workdir)


def weft_serve(ports: Ports, background: str) -> list[str]:
    weft = str(Path(sys.executable).parent / "weft")
    return [weft, "serve", "--host", HOST, "--port", str(ports.weft), "--background", background]


def airtable_env(ports: Ports) -> dict[str, str]:
    """The organisers' Airtable copy on, written to the loopback provider (which also answers Airtable's upsert)."""
    return {"AIRTABLE_API_KEY": "patBench0000000001.0123456789abcdef", "AIRTABLE_BASE_ID": "appBench000000001",
            "AIRTABLE_API_URL": f"http://{HOST}:{ports.provider}"}


def weft_env(ports: Ports, database: str) -> dict[str, str]:
    # cwd is the temporary directory, so no developer .env is read; unset optional secrets explicitly.
    return {
        "WEFT_DATABASE_URL": database,
        "WEFT_PUBLIC_URL": f"http://{HOST}:{ports.weft}",
        "WEFT_SMS_PROVIDER": "bird",
        "BIRD_API_URL": f"http://{HOST}:{ports.provider}",
        "BIRD_API_KEY": "bench-key",
        "BIRD_WORKSPACE_ID": "bench-workspace",
        "BIRD_CHANNEL_ID": CHANNEL_ID,
        "BIRD_SIGNING_KEY": "",
        "BIRD_ACCESS_KEY_ID": "",
        "WEFT_JOIN_WORDS": "LOVE",
        "WEFT_PROVIDER_SENDS_KEYWORD_REPLIES": "false",
        # Unpaced: with Bird's default pace (10 segments/s) the replies to a few thousand webhooks would still be
        # queued long after the drain timeout; this benchmark checks that each is delivered once, not the pace.
        "WEFT_SMS_RATE_PER_SECOND": "0",
    }


async def wait_ready(processes: Processes, ports: Ports, timeout: float = 30.0) -> None:
    targets = [(ports.provider, "/stats"), (ports.bare, "/"), (ports.weft, "/healthz")]
    deadline = time.monotonic() + timeout
    for port, path in targets:
        while True:
            processes.check_alive()
            try:
                status, _ = await loadgen.fetch(HOST, port, loadgen.get_request(HOST, port, path), timeout=1.0)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not ready after {timeout:.0f}s")
            await asyncio.sleep(0.1)


async def measured(
    processes: Processes, names: list[str], run: Callable[[], Coroutine[Any, Any, loadgen.RunResult]]
) -> tuple[loadgen.RunResult, dict[str, float]]:
    """Run the load and the CPU seconds used meanwhile by each named child, by its own children (as `<name> children`:
    weft's worker) and by this load generator."""
    before = {name: processes.cpu_seconds(name) for name in names}
    children_before = {name: processes.children_cpu_seconds(name) for name in names}
    own_before = time.process_time()
    result = await run()
    cpu = {name: round(processes.cpu_seconds(name) - before[name], 2) for name in names}
    for name in names:
        if children := processes.children_cpu_seconds(name):
            used = sum(seconds - children_before[name].get(pid, 0.0) for pid, seconds in children.items())
            cpu[f"{name} children"] = round(used, 2)
    cpu["loadgen"] = round(time.process_time() - own_before, 2)
    return result, cpu


async def bench_bare(processes: Processes, ports: Ports, options: Options) -> dict[str, Any]:
    make = InboundLove(ports.bare, path="/")
    await loadgen.run(HOST, ports.bare, make, options.connections, options.warmup)
    result, cpu = await measured(processes, ["bare"], lambda: loadgen.run(
        HOST, ports.bare, make, options.connections, options.duration))
    return {**summary(result), "cpu_seconds": cpu}


async def bench_webhook(processes: Processes, ports: Ports, options: Options) -> tuple[dict[str, Any], int]:
    """The webhook run's summary and how many webhooks were sent in all (warm-up included)."""
    make = InboundLove(ports.weft)
    make.check_numbers(upto=200_000)
    return await run_processed(processes, ports.weft, make, options, ["weft", "provider"],
                               lambda: start_profiler(processes, options), answer="received")


async def run_processed(
    processes: Processes, port: int, make: Any, options: Any, names: list[str],
    profile: Callable[[], subprocess.Popen[bytes] | None], answer: str = "processed",
) -> tuple[dict[str, Any], int]:
    """Warm up, then measure webhooks answered `answer` (counted as `{answer}_total`); the summary and how many
    were sent in all."""
    marker = f'"{answer}"'.encode()
    warmup = await loadgen.run(HOST, port, make, options.connections, options.warmup, marker=marker)
    profiler = profile()
    result, cpu = await measured(processes, names, lambda: loadgen.run(
        HOST, port, make, options.connections, options.duration, marker=marker))
    stop_profiler(profiler)
    sent = warmup.requests + result.requests
    outcome = {
        **summary(result),
        "cpu_seconds": cpu,
        "warmup_requests": warmup.requests,
        "non_2xx_total": warmup.non_2xx + result.non_2xx,
        f"{answer}_total": warmup.marked + result.marked,
        "error_samples": warmup.error_samples + result.error_samples,
    }
    return outcome, sent


def summary(result: loadgen.RunResult) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "req_per_s": round(result.rate, 1),
        "p50_ms": round(result.percentile_ms(0.50), 2),
        "p99_ms": round(result.percentile_ms(0.99), 2),
        "max_ms": round(result.percentile_ms(1.0), 2),
        "non_2xx": result.non_2xx,
    }


def start_profiler(processes: Processes, options: Options) -> subprocess.Popen[bytes] | None:
    """py-spy on the weft process for the measured run, when asked for and installed.

    Samples only the thread holding the GIL: the server is GIL-bound, so that is where its one core goes.
    """
    py_spy = shutil.which("py-spy") or shutil.which(str(Path(sys.executable).parent / "py-spy"))
    if not options.profile or py_spy is None:
        if options.profile:
            print("py-spy not found (pip install py-spy into the venv); running without a profile", file=sys.stderr)
        return None
    output = RESULTS_DIR / "weft-profile.txt"
    argv = [py_spy, "record", "--pid", str(processes.pid("weft")), "--duration", str(int(options.duration)),
            "--rate", "200", "--format", "raw", "--gil", "--threads", "--nonblocking", "--output", str(output)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()


async def wait_for_replies(ports: Ports, expected: int, timeout: float) -> tuple[dict[str, int], float]:
    """Poll the provider until it has `expected` sends (or time runs out): its stats and the seconds waited."""
    started = time.monotonic()
    request = loadgen.get_request(HOST, ports.provider, "/stats")
    while True:
        _, body = await loadgen.fetch(HOST, ports.provider, request)
        stats: dict[str, int] = json.loads(body)
        waited = time.monotonic() - started
        if stats["requests"] >= expected or waited > timeout:
            return stats, round(waited, 2)
        await asyncio.sleep(0.2)


def database_counts(database: str) -> dict[str, Any]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            def scalar(sql: str) -> Any:
                return connection.exec_driver_sql(sql).scalar()

            inbound = scalar("SELECT count(*) FROM inbound_messages")
            applied = scalar("SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL AND error IS NULL")
            outbox = {row[0]: row[1] for row in connection.exec_driver_sql(
                "SELECT status, count(*) FROM outbox GROUP BY status")}
            journal = scalar("PRAGMA journal_mode") if engine.dialect.name == "sqlite" else None
    finally:
        engine.dispose()
    return {"inbound_rows": inbound, "inbound_applied": applied, "outbox_by_status": outbox, "journal_mode": journal}


async def verify(ports: Ports, database: str, webhook: dict[str, Any], sent: int, timeout: float) -> dict[str, Any]:
    stats, waited = await wait_for_replies(ports, sent, timeout)
    counts = database_counts(database)
    return {
        "webhooks_sent": sent,
        "all_2xx": webhook["non_2xx_total"] == 0,
        "all_received": webhook["received_total"] == sent,
        **counts,
        "rows_match": counts["inbound_rows"] == sent == counts["inbound_applied"],
        "provider": stats,
        "reply_wait_seconds": waited,
        "replies_match": stats["requests"] == sent and stats["references"] == sent and stats["recipients"] == sent,
    }


async def airtable_stats(ports: Ports) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        return dict((await client.get(f"http://{HOST}:{ports.provider}/airtable-stats")).json())


def passed(checks: dict[str, Any]) -> bool:
    return all(checks[name] for name in ("all_2xx", "all_received", "rows_match", "replies_match"))


async def bench(processes: Processes, options: Options, workdir: Path, database: str) -> dict[str, Any]:
    ports = Ports(weft=free_port(), bare=free_port(), provider=free_port())
    start_servers(processes, ports, workdir, options.background, database, options.airtable)
    await wait_ready(processes, ports)
    bare = await bench_bare(processes, ports, options)
    webhook, sent = await bench_webhook(processes, ports, options)
    checks = await verify(ports, database, webhook, sent, options.drain_timeout)
    ratio = webhook["req_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    if options.airtable:
        checks["airtable"] = await airtable_stats(ports)
    return {
        "settings": {**attrs.asdict(options), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                     "database": "SQLite, WAL, synchronous=FULL" if options.backend == "sqlite" else "PostgreSQL",
                     "uvicorn": UVICORN_CALL},
        "bare": bare,
        "webhook": webhook,
        "ratio": round(ratio, 3),
        "targets": {"ratio_min": RATIO_TARGET, "p99_max_ms": P99_TARGET_MS, "ratio_met": ratio >= RATIO_TARGET,
                    "p99_met": webhook["p99_ms"] < P99_TARGET_MS},
        "checks": checks,
        "passed": passed(checks),
    }


def render(report: dict[str, Any]) -> str:
    bare, hook, checks, targets = report["bare"], report["webhook"], report["checks"], report["targets"]
    met = {True: "met", False: "MISSED"}
    return "\n".join([
        f"weft serve --background {report['settings']['background']} on {report['settings']['database']}",
        f"bare Starlette  {bare['req_per_s']:8.1f} req/s  p50 {bare['p50_ms']:6.2f} ms  p99 {bare['p99_ms']:6.2f} ms",
        f"weft webhook    {hook['req_per_s']:8.1f} req/s  p50 {hook['p50_ms']:6.2f} ms  p99 {hook['p99_ms']:6.2f} ms",
        f"ratio {report['ratio']:.3f} (target >= {RATIO_TARGET}: {met[targets['ratio_met']]}); "
        f"webhook p99 {hook['p99_ms']:.2f} ms (target < {P99_TARGET_MS:.0f} ms: {met[targets['p99_met']]})",
        f"cpu seconds during runs: bare {bare['cpu_seconds']}, webhook {hook['cpu_seconds']}",
        f"checks: sent {checks['webhooks_sent']}, all 2xx {checks['all_2xx']}, received {checks['all_received']}, "
        f"inbound rows {checks['inbound_rows']} ({'ok' if checks['rows_match'] else 'MISMATCH'}), "
        f"provider {checks['provider']} after {checks['reply_wait_seconds']} s "
        f"({'ok' if checks['replies_match'] else 'MISMATCH'}), outbox {checks['outbox_by_status']}",
        *([f"airtable copy: {checks['airtable']}"] if "airtable" in checks else []),
        f"correctness: {'PASS' if report['passed'] else 'FAIL'}; report in {RESULTS_DIR / 'inbound_webhook.json'}",
    ])


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for the replies")
    parser.add_argument("--profile", action="store_true", help="py-spy the weft process during the measured run")
    add_background_option(parser)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--airtable", action="store_true",
                        help="with the organisers' Airtable copy on (written to the loopback provider)")
    parser.add_argument("--postgres-url", default=os.environ.get("WEFT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    args = parser.parse_args()
    return Options(args.duration, args.warmup, args.connections, args.drain_timeout, args.profile, args.background,
                   args.backend, args.postgres_url, args.airtable)


def add_background_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--background", choices=["process", "inline"], default="inline",
                        help="passed to `weft serve`: background work inline (its SQLite default) or in a child")


def run_event_loop(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # the client must stay cheap, but plain asyncio still works
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> int:
    options = parse_options()
    exit_on_sigterm()
    RESULTS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="weft-bench-") as tmp:
        databases = sqlite_database(Path(tmp), "bench") if options.backend == "sqlite" \
            else postgres_database(options.postgres_url)
        with databases as database:
            processes = Processes(log_dir=RESULTS_DIR)
            try:
                report = run_event_loop(bench(processes, options, Path(tmp), database))
            finally:
                processes.stop_all()
    (RESULTS_DIR / "inbound_webhook.json").write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
