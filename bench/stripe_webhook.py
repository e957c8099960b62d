"""Stripe webhook throughput: signed `checkout.session.completed` at `weft serve` against a bare Starlette endpoint.

Usage: .venv/bin/python bench/stripe_webhook.py [--duration 10] [--warmup 3] [--connections 50] [--profile]
                                                [--background process|inline]

Weft runs with SQLite, console SMS and email, and STRIPE_API_BASE on a loopback Stripe (loopback_stripe.py) that
answers the session re-read. Each event is freshly signed for the next paid session `cs_bench_{i}` of a distinct
member; the bare endpoint gets the same signed bodies. Reports both req/s, their ratio and the webhook latencies,
then checks every event was answered "processed" and recorded once (event, payment, member, journey), and how many
journeys the background worker (`weft serve`'s `weft worker` child, or in-process with `--background inline`)
completed after a settle time.
A benchmark script, not a test: it exits 1 only when a correctness check fails, never on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import loadgen
import phonenumbers
from inbound_webhook import (
    UVICORN_CALL,
    Ports,
    add_background_option,
    free_port,
    measured,
    run_event_loop,
    run_processed,
    summary,
    wait_ready,
    weft_serve,
)
from loopback_stripe import API_KEY, bench_phone, session_object
from processes import Processes, exit_on_sigterm

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPORT = RESULTS_DIR / "stripe_webhook.json"
PROFILE = RESULTS_DIR / "stripe-weft-profile.txt"
RATIO_TARGET = 0.15
WEBHOOK_SECRET = "whsec_bench_3n5Yq8ZcK2vT7wLm9RfXa4Hd"
API_VERSION = "2026-10-28.endive"
WEFT, BARE, STRIPE = "stripe-weft", "stripe-bare", "stripe-api"
"""Process names, and so log names: bench/results/<name>.log, apart from inbound_webhook.py's."""


@attrs.frozen
class Options:
    duration: float
    warmup: float
    connections: int
    settle_timeout: float
    profile: bool
    background: str


class SignedCompletions:
    """Request factory: each call is `checkout.session.completed` for the next session, signed with the current time."""

    def __init__(self, port: int, path: str = "/api/stripe/webhook", secret: str = WEBHOOK_SECRET) -> None:
        self._port, self._path, self._key = port, path, secret.encode()
        created = int(time.time())
        event = {
            "id": "evt_bench_@N@", "object": "event", "api_version": API_VERSION, "created": created,
            "data": {"object": session_object("@N@", "@PHONE@", created)}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": "checkout.session.completed",
        }
        self._template = json.dumps(event, separators=(",", ":"))
        self.count = 0

    def __call__(self) -> bytes:
        body = self._template.replace("@N@", str(self.count)).replace("@PHONE@", bench_phone(self.count)).encode()
        self.count += 1
        timestamp = str(int(time.time())).encode()
        signature = hmac.new(self._key, timestamp + b"." + body, hashlib.sha256).hexdigest()
        header = {"Stripe-Signature": f"t={timestamp.decode()},v1={signature}"}
        return loadgen.post_request(HOST, self._port, self._path, body, header)


def check_numbers(upto: int) -> None:
    """Fail fast if the number plan would hand the app an invalid number (it would record no payment)."""
    for index in range(0, upto, max(1, upto // 500)):
        if not phonenumbers.is_valid_number(phonenumbers.parse(bench_phone(index))):
            raise RuntimeError(f"{bench_phone(index)} is not a valid number; change loopback_stripe.FIRST_NUMBER")


def start_servers(processes: Processes, ports: Ports, workdir: Path, background: str) -> Path:
    """Start the loopback Stripe, the bare app and `weft serve` (with its worker unless inline); returns the SQLite
    database path."""
    python = sys.executable
    database = workdir / "bench.db"
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes.start(STRIPE, [python, str(BENCH_DIR / "loopback_stripe.py"), "--port", str(ports.provider)],
                    base_env, workdir)
    processes.start(BARE, [python, str(BENCH_DIR / "bare_app.py"), "--host", HOST, "--port", str(ports.bare)],
                    base_env, workdir)
    processes.start(WEFT, weft_serve(ports, background), {**base_env, **weft_env(ports, database)}, workdir)
    return database


def weft_env(ports: Ports, database: Path) -> dict[str, str]:
    # cwd is the temporary directory, so no developer .env is read; the providers are named explicitly.
    return {
        "WEFT_DATABASE_URL": f"sqlite:///{database}",
        "WEFT_PUBLIC_URL": f"http://{HOST}:{ports.weft}",
        "WEFT_SMS_PROVIDER": "console",
        "WEFT_EMAIL_PROVIDER": "console",
        "WEFT_LINK_SECRET": "bench-link-secret",
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"http://{HOST}:{ports.provider}",
    }


async def bench_bare(processes: Processes, ports: Ports, options: Options) -> dict[str, Any]:
    make = SignedCompletions(ports.bare, path="/")
    await loadgen.run(HOST, ports.bare, make, options.connections, options.warmup)
    result, cpu = await measured(processes, [BARE], lambda: loadgen.run(
        HOST, ports.bare, make, options.connections, options.duration))
    return {**summary(result), "cpu_seconds": cpu}


async def bench_webhook(processes: Processes, ports: Ports, options: Options) -> tuple[dict[str, Any], int]:
    """The webhook run's summary and how many events were sent in all (warm-up included)."""
    make = SignedCompletions(ports.weft)
    check_numbers(upto=200_000)
    return await run_processed(processes, ports.weft, make, options, [WEFT, STRIPE],
                               lambda: start_profiler(processes, options))


def start_profiler(processes: Processes, options: Options) -> subprocess.Popen[bytes] | None:
    """py-spy on the weft process for the measured run (GIL holder only: the server is GIL-bound), when asked."""
    py_spy = shutil.which("py-spy") or shutil.which(str(Path(sys.executable).parent / "py-spy"))
    if not options.profile or py_spy is None:
        if options.profile:
            print("py-spy not found (pip install py-spy into the venv); running without a profile", file=sys.stderr)
        return None
    argv = [py_spy, "record", "--pid", str(processes.pid(WEFT)), "--duration", str(int(options.duration)),
            "--rate", "200", "--format", "raw", "--gil", "--threads", "--nonblocking", "--output", str(PROFILE)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def database_counts(database: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        def count(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        return {
            "processed_events": count("SELECT count(*) FROM processed_events"),
            "payments": count("SELECT count(*) FROM payments"),
            "payments_by_status": dict(connection.execute(
                "SELECT status, count(*) FROM payments GROUP BY status").fetchall()),
            "members": count("SELECT count(*) FROM subscribers"),
            "journeys": count("SELECT count(*) FROM journeys"),
            "journeys_completed": count("SELECT count(*) FROM journeys WHERE completed_at IS NOT NULL"),
            "journal_mode": connection.execute("PRAGMA journal_mode").fetchone()[0],
        }


async def settle(database: Path, expected: int, timeout: float) -> tuple[dict[str, Any], float]:
    """Poll until `expected` journeys are completed (or time runs out): the counts and the seconds waited."""
    started = time.monotonic()
    while True:
        counts = database_counts(database)
        waited = time.monotonic() - started
        if counts["journeys_completed"] >= expected or waited > timeout:
            return counts, round(waited, 2)
        await asyncio.sleep(0.5)


async def stripe_stats(ports: Ports) -> dict[str, int]:
    _, body = await loadgen.fetch(HOST, ports.provider, loadgen.get_request(HOST, ports.provider, "/stats"))
    stats: dict[str, int] = json.loads(body)
    return stats


async def verify(ports: Ports, database: Path, webhook: dict[str, Any], sent: int, timeout: float) -> dict[str, Any]:
    at_stop = database_counts(database)["journeys_completed"]
    counts, waited = await settle(database, sent, timeout)
    stripe = await stripe_stats(ports)
    return {
        "events_sent": sent,
        "journeys_completed_when_load_stopped": at_stop,
        "all_2xx": webhook["non_2xx_total"] == 0,
        "all_processed": webhook["processed_total"] == sent,
        **counts,
        "rows_match": all(counts[table] == sent for table in ("processed_events", "payments", "members", "journeys"))
        and counts["payments_by_status"] == {"completed": sent},
        "stripe": stripe,
        "stripe_match": stripe["distinct_sessions"] == sent and stripe["refused"] == 0,
        "settle_seconds": waited,
        "journeys_all_completed": counts["journeys_completed"] == sent,
    }


def passed(checks: dict[str, Any]) -> bool:
    return all(checks[name] for name in ("all_2xx", "all_processed", "rows_match", "stripe_match",
                                         "journeys_all_completed"))


async def bench(processes: Processes, options: Options, workdir: Path) -> dict[str, Any]:
    ports = Ports(weft=free_port(), bare=free_port(), provider=free_port())
    database = start_servers(processes, ports, workdir, options.background)
    await wait_ready(processes, ports)
    bare = await bench_bare(processes, ports, options)
    webhook, sent = await bench_webhook(processes, ports, options)
    checks = await verify(ports, database, webhook, sent, options.settle_timeout)
    ratio = webhook["req_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    return {
        "settings": {**attrs.asdict(options), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                     "sqlite": "WAL, synchronous=FULL", "uvicorn": UVICORN_CALL, "sms": "console", "email": "console",
                     "stripe": "loopback_stripe.py (GET /v1/checkout/sessions/{id})"},
        "bare": bare,
        "webhook": webhook,
        "ratio": round(ratio, 3),
        "targets": {"ratio_min": RATIO_TARGET, "ratio_met": ratio >= RATIO_TARGET},
        "checks": checks,
        "passed": passed(checks),
    }


def render(report: dict[str, Any]) -> str:
    bare, hook, checks, targets = report["bare"], report["webhook"], report["checks"], report["targets"]
    ok = {True: "ok", False: "MISMATCH"}
    return "\n".join([
        f"weft serve --background {report['settings']['background']}",
        f"bare Starlette  {bare['req_per_s']:8.1f} req/s  p50 {bare['p50_ms']:7.2f} ms  p99 {bare['p99_ms']:7.2f} ms",
        f"stripe webhook  {hook['req_per_s']:8.1f} req/s  p50 {hook['p50_ms']:7.2f} ms  p99 {hook['p99_ms']:7.2f} ms",
        f"ratio {report['ratio']:.3f} (target >= {RATIO_TARGET}: {'met' if targets['ratio_met'] else 'MISSED'})",
        f"cpu seconds during runs: bare {bare['cpu_seconds']}, webhook {hook['cpu_seconds']}",
        f"checks: sent {checks['events_sent']}, all 2xx {checks['all_2xx']}, processed {checks['all_processed']}, "
        f"rows: events {checks['processed_events']}, payments {checks['payments_by_status']}, "
        f"members {checks['members']}, journeys {checks['journeys']} ({ok[checks['rows_match']]}); "
        f"stripe {checks['stripe']} ({ok[checks['stripe_match']]})",
        f"journeys completed {checks['journeys_completed_when_load_stopped']} when the load stopped, "
        f"{checks['journeys_completed']}/{checks['events_sent']} after {checks['settle_seconds']} s more "
        f"({ok[checks['journeys_all_completed']]})",
        f"correctness: {'PASS' if report['passed'] else 'FAIL'}; report in {REPORT}",
    ])


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--settle-timeout", type=float, default=30.0,
                        help="seconds to wait for the journey worker to complete every journey")
    parser.add_argument("--profile", action="store_true", help="py-spy the weft process during the measured run")
    add_background_option(parser)
    args = parser.parse_args()
    return Options(args.duration, args.warmup, args.connections, args.settle_timeout, args.profile, args.background)


def main() -> int:
    options = parse_options()
    exit_on_sigterm()
    RESULTS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="weft-bench-") as tmp:
        processes = Processes(log_dir=RESULTS_DIR)
        try:
            report = run_event_loop(bench(processes, options, Path(tmp)))
        finally:
            processes.stop_all()
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
