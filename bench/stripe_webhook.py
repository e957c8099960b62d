"""Stripe webhook throughput: signed `checkout.session.completed` at `weft serve` against a bare Starlette endpoint,
then how fast the stored events are applied at the configured Stripe pace.

Usage: .venv/bin/python bench/stripe_webhook.py [--duration 10] [--warmup 3] [--connections 50]
                                                [--process-window 30] [--stripe-rate 20] [--profile]
                                                [--background process|inline]

Weft runs with SQLite, console SMS and email, STRIPE_MAX_REQUESTS_PER_SECOND=--stripe-rate and STRIPE_API_BASE on a
loopback Stripe (loopback_stripe.py) that answers the session re-read and refuses requests beyond --stripe-rate a
second with 429. Each event is freshly signed for the next paid session `cs_bench_{i}` of a distinct member; the
bare endpoint gets the same signed bodies.
1. Webhooks: both req/s, their ratio and the webhook latencies; every event must be answered 2xx "received".
2. Processing: the events the payment-events worker applied during --process-window seconds after the load, per
   second, against the pace, and the 429s the loopback answered meanwhile. It does not wait for the backlog.
3. Checks, after stopping weft (so nothing is in flight): one received_events row per event sent, and for each
   processed one exactly one processed event, completed payment, member and journey, and one successful session
   read at the loopback.
A benchmark script, not a test: it exits 1 only when a correctness check fails, never on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
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
PACE_MIN = 0.9
"""Processing target: applied events/s at least this fraction of the Stripe pace..."""
PACE_TOLERANCE = 0.05
"""...and at most the pace plus this fraction (counting at two instants misses or adds an event or so)."""
STOP_TIMEOUT = 60.0
"""Seconds weft gets to stop: its workers finish and record the batches in hand first."""
WEBHOOK_SECRET = "whsec_bench_3n5Yq8ZcK2vT7wLm9RfXa4Hd"
API_VERSION = "2026-10-28.endive"
WEFT, BARE, STRIPE = "stripe-weft", "stripe-bare", "stripe-api"
"""Process names, and so log names: bench/results/<name>.log, apart from inbound_webhook.py's."""


@attrs.frozen
class Options:
    duration: float
    warmup: float
    connections: int
    process_window: float
    stripe_rate: float
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


def start_servers(
    processes: Processes, ports: Ports, workdir: Path, options: Options
) -> tuple[Path, subprocess.Popen[bytes]]:
    """Start the loopback Stripe (limited to the pace), the bare app and `weft serve` (with its worker unless inline);
    returns the SQLite database path and `weft serve`'s process."""
    python = sys.executable
    database = workdir / "bench.db"
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes.start(STRIPE, [python, str(BENCH_DIR / "loopback_stripe.py"), "--port", str(ports.provider),
                             "--limit", str(options.stripe_rate)], base_env, workdir)
    processes.start(BARE, [python, str(BENCH_DIR / "bare_app.py"), "--host", HOST, "--port", str(ports.bare)],
                    base_env, workdir)
    weft = processes.start(WEFT, weft_serve(ports, options.background),
                           {**base_env, **weft_env(ports, database, options.stripe_rate)}, workdir)
    return database, weft


def weft_env(ports: Ports, database: Path, stripe_rate: float) -> dict[str, str]:
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
        "STRIPE_MAX_REQUESTS_PER_SECOND": str(stripe_rate),
        # Otherwise a month's care message not yet run starts at startup, whatever the date: not what is measured.
        "WEFT_SCHEDULER": "off",
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
                               lambda: start_profiler(processes, options), answer="received")


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
    """The rows the checks compare; read-only, so it may run while weft writes (WAL)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        def count(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        return {
            "received_events": count("SELECT count(*) FROM received_events"),
            "received_by_status": dict(connection.execute(
                "SELECT status, count(*) FROM received_events GROUP BY status").fetchall()),
            "processed_events": count("SELECT count(*) FROM processed_events"),
            "payments": count("SELECT count(*) FROM payments"),
            "payments_by_status": dict(connection.execute(
                "SELECT status, count(*) FROM payments GROUP BY status").fetchall()),
            "members": count("SELECT count(*) FROM subscribers"),
            "journeys": count("SELECT count(*) FROM journeys"),
            "journeys_completed": count("SELECT count(*) FROM journeys WHERE completed_at IS NOT NULL"),
            # Each processed event traced through its session to its own rows; unique keys make each match one row.
            "processed_fully_applied": count(
                "SELECT count(*) FROM received_events r"
                " JOIN processed_events e ON e.event_id = r.event_id"
                " JOIN payments p ON p.checkout_session_id = 'cs_bench_' || substr(r.event_id, 11)"
                " AND p.status = 'completed'"
                " JOIN subscribers s ON s.phone = p.phone JOIN journeys j ON j.payment_id = p.id"
                " WHERE r.status = 'processed'"),
            "max_attempts": count("SELECT coalesce(max(attempts), 0) FROM received_events"),
            "pending_with_error": count("SELECT count(*) FROM received_events WHERE status = 'pending'"
                                        " AND error IS NOT NULL"),
            "error_samples": [row[0] for row in connection.execute(
                "SELECT DISTINCT error FROM received_events WHERE error IS NOT NULL LIMIT 3").fetchall()],
            "journal_mode": connection.execute("PRAGMA journal_mode").fetchone()[0],
        }


def processed_count(database: Path) -> tuple[int, int]:
    """Events applied and still pending, now."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        by_status = dict(connection.execute("SELECT status, count(*) FROM received_events GROUP BY status").fetchall())
    return int(by_status.get("processed", 0)), int(by_status.get("pending", 0))


def event_indexes(database: Path, status: str | None = None) -> list[int]:
    """The N of each stored evt_bench_N (with that status), sorted."""
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(f"SELECT event_id FROM received_events {where}", args).fetchall()
    return sorted(int(str(row[0]).removeprefix("evt_bench_")) for row in rows)


async def stripe_stats(ports: Ports, path: str = "/stats") -> dict[str, Any]:
    _, body = await loadgen.fetch(HOST, ports.provider, loadgen.get_request(HOST, ports.provider, path))
    stats: dict[str, Any] = json.loads(body)
    return stats


async def snapshot(ports: Ports, database: Path) -> dict[str, Any]:
    stripe = await stripe_stats(ports)
    processed, pending = processed_count(database)
    return {"at": time.monotonic(), "processed": processed, "pending": pending, "stripe": stripe}


async def measure_processing(processes: Processes, ports: Ports, database: Path, options: Options,
                             at_load_stop: dict[str, Any]) -> dict[str, Any]:
    """Events applied (received_events turned 'processed') per second over the window, against the pace, with the
    Stripe requests, reads and 429s the loopback saw meanwhile; the backlog is left where it is."""
    cpu_before = cpu_now(processes)
    first = await snapshot(ports, database)
    deadline = first["at"] + options.process_window
    while (left := deadline - time.monotonic()) > 0:
        processes.check_alive()
        await asyncio.sleep(min(left, 1.0))
    last = await snapshot(ports, database)
    seconds = last["at"] - first["at"]

    def per_second(value: float) -> float:
        return round(value / seconds, 2) if seconds > 0 else 0.0

    applied = last["processed"] - first["processed"]
    rate = applied / seconds if seconds > 0 else 0.0
    stripe_first, stripe_last = first["stripe"], last["stripe"]
    return {
        "pace": options.stripe_rate,
        "seconds": round(seconds, 2),
        "processed_when_load_stopped": at_load_stop["processed"],
        "throttled_when_load_stopped": at_load_stop["stripe"]["throttled"],
        "processed_at_start": first["processed"],
        "processed_at_end": last["processed"],
        "pending_at_end": last["pending"],
        "backlog_ran_out": last["pending"] == 0,
        "applied": applied,
        "applied_per_s": round(rate, 2),
        "pace_ratio": round(rate / options.stripe_rate, 3),
        "session_reads_per_s": per_second(stripe_last["session_reads"] - stripe_first["session_reads"]),
        "stripe_requests_per_s": per_second(stripe_last["requests"] - stripe_first["requests"]),
        "throttled_429": stripe_last["throttled"] - stripe_first["throttled"],
        "cpu_seconds": {name: round(used - cpu_before.get(name, 0.0), 2) for name, used in cpu_now(processes).items()},
    }


def cpu_now(processes: Processes) -> dict[str, float]:
    """CPU seconds used so far by weft (and its worker child, with --background process) and the loopback Stripe."""
    cpu = {name: processes.cpu_seconds(name) for name in (WEFT, STRIPE)}
    if children := processes.children_cpu_seconds(WEFT):
        cpu[f"{WEFT} children"] = sum(children.values())
    return cpu


def stop_weft(weft: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM weft's process group (serve, and its worker with --background process) and wait until all of it has
    exited: its workers finish and record the batches in hand, so nothing is in flight when the checks count."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(weft.pid, signal.SIGTERM)
    try:
        code: int | None = weft.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None  # Processes.stop_all kills it
    group_left = code is not None and not group_gone_within(weft.pid, STOP_TIMEOUT)
    # uvicorn re-raises the SIGTERM once it has shut down, so a graceful stop exits with -15 (or 0).
    complete = weft_log_lines("Application shutdown complete") > 0
    return {"exit_code": code, "stop_seconds": round(time.monotonic() - started, 2), "shutdown_complete": complete,
            "stopped_cleanly": code in (0, -signal.SIGTERM) and complete and not group_left}


def group_gone_within(group: int, seconds: float) -> bool:
    """Reap the group's members we adopted (this script is their subreaper) until none is left, or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitid(os.P_PGID, group, os.WEXITED | os.WNOHANG) is not None:
                pass
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def weft_log_lines(marker: str) -> int:
    try:
        return sum(marker in line for line in (RESULTS_DIR / f"{WEFT}.log").read_text(errors="replace").splitlines())
    except OSError:
        return 0


async def verify(ports: Ports, database: Path, webhook: dict[str, Any], sent: int,
                 stopped: dict[str, Any]) -> dict[str, Any]:
    """What was stored and applied, counted with weft stopped: nothing is in flight."""
    counts = database_counts(database)
    processed = int(counts["received_by_status"].get("processed", 0))
    stripe = await stripe_stats(ports)
    read = await stripe_stats(ports, "/sessions")
    tables = ("processed_events", "payments", "members", "journeys", "processed_fully_applied")
    return {
        "events_sent": sent,
        "weft_stop": stopped,
        "all_2xx": webhook["non_2xx_total"] == 0,
        "all_received": webhook["received_total"] == sent,
        **counts,
        "received_match": counts["received_events"] == sent and event_indexes(database) == list(range(sent)),
        "processed": processed,
        "rows_match": processed > 0 and all(counts[table] == processed for table in tables)
        and counts["payments_by_status"] == {"completed": processed},
        "stripe": stripe,
        "stripe_match": stripe["session_reads"] == processed and stripe["reread_sessions"] == 0
        and stripe["refused"] == 0 and read["read"] == event_indexes(database, "processed"),
        "weft_log": {"warnings": weft_log_lines("WARNING"), "errors": weft_log_lines("ERROR"),
                     "not_applied_yet": weft_log_lines("not applied yet")},
    }


def passed(checks: dict[str, Any]) -> bool:
    return checks["weft_stop"]["stopped_cleanly"] and all(
        checks[name] for name in ("all_2xx", "all_received", "received_match", "rows_match", "stripe_match"))


async def bench(processes: Processes, options: Options, workdir: Path) -> dict[str, Any]:
    ports = Ports(weft=free_port(), bare=free_port(), provider=free_port())
    database, weft = start_servers(processes, ports, workdir, options)
    await wait_ready(processes, ports)
    bare = await bench_bare(processes, ports, options)
    webhook, sent = await bench_webhook(processes, ports, options)
    at_load_stop = await snapshot(ports, database)
    processing = await measure_processing(processes, ports, database, options, at_load_stop)
    stopped = stop_weft(weft)
    checks = await verify(ports, database, webhook, sent, stopped)
    ratio = webhook["req_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    pace_low, pace_high = PACE_MIN * options.stripe_rate, (1 + PACE_TOLERANCE) * options.stripe_rate
    return {
        "settings": {**attrs.asdict(options), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                     "sqlite": "WAL, synchronous=FULL", "uvicorn": UVICORN_CALL, "sms": "console", "email": "console",
                     "stripe": f"loopback_stripe.py (GET /v1/checkout/sessions/{{id}}), --limit {options.stripe_rate}",
                     "STRIPE_MAX_REQUESTS_PER_SECOND": options.stripe_rate},
        "bare": bare,
        "webhook": webhook,
        "ratio": round(ratio, 3),
        "processing": processing,
        "targets": {"ratio_min": RATIO_TARGET, "ratio_met": ratio >= RATIO_TARGET,
                    "applied_per_s_min": round(pace_low, 2), "applied_per_s_max": round(pace_high, 2),
                    "pace_met": pace_low <= processing["applied_per_s"] <= pace_high},
        "checks": checks,
        "passed": passed(checks),
    }


def render(report: dict[str, Any]) -> str:
    bare, hook, checks, targets = report["bare"], report["webhook"], report["checks"], report["targets"]
    work, stop, stripe = report["processing"], checks["weft_stop"], checks["stripe"]
    ok, met = {True: "ok", False: "MISMATCH"}, {True: "met", False: "MISSED"}
    backlog = " (the backlog ran out: not a measure of the pace)" if work["backlog_ran_out"] else ""
    return "\n".join([
        f"weft serve --background {report['settings']['background']}, "
        f"STRIPE_MAX_REQUESTS_PER_SECOND={work['pace']:g}, loopback Stripe --limit {work['pace']:g}",
        f"bare Starlette  {bare['req_per_s']:8.1f} req/s  p50 {bare['p50_ms']:7.2f} ms  p99 {bare['p99_ms']:7.2f} ms",
        f"stripe webhook  {hook['req_per_s']:8.1f} req/s  p50 {hook['p50_ms']:7.2f} ms  p99 {hook['p99_ms']:7.2f} ms",
        f"ratio {report['ratio']:.3f} (target >= {RATIO_TARGET}: {met[targets['ratio_met']]})",
        f"cpu seconds during runs: bare {bare['cpu_seconds']}, webhook {hook['cpu_seconds']}",
        f"processing: {work['processed_when_load_stopped']} applied when the load stopped; "
        f"{work['applied']} in {work['seconds']} s after it = {work['applied_per_s']:.2f}/s, "
        f"{work['pace_ratio']:.3f} of the pace {work['pace']:g}/s "
        f"(target {targets['applied_per_s_min']:g}..{targets['applied_per_s_max']:g}/s: {met[targets['pace_met']]})"
        f"{backlog}; {work['pending_at_end']} still pending",
        f"stripe in the window: {work['stripe_requests_per_s']:.2f} requests/s, {work['session_reads_per_s']:.2f} "
        f"session reads/s, {work['throttled_429']} answered 429 ({stripe['throttled']} in all, "
        f"{work['throttled_when_load_stopped']} by the end of the load); cpu seconds {work['cpu_seconds']}",
        f"weft stopped in {stop['stop_seconds']} s with exit code {stop['exit_code']}, shutdown "
        f"{'complete' if stop['shutdown_complete'] else 'NOT complete'} ({ok[stop['stopped_cleanly']]})",
        f"checks: sent {checks['events_sent']}, all 2xx {checks['all_2xx']}, received {checks['all_received']}, "
        f"received_events {checks['received_events']} {checks['received_by_status']} "
        f"({ok[checks['received_match']]})",
        f"applied {checks['processed']}: processed events {checks['processed_events']}, "
        f"payments {checks['payments_by_status']}, members {checks['members']}, journeys {checks['journeys']}, "
        f"traced end to end {checks['processed_fully_applied']} ({ok[checks['rows_match']]}); "
        f"journeys completed {checks['journeys_completed']}; max attempts {checks['max_attempts']}",
        f"loopback stripe {stripe} ({ok[checks['stripe_match']]})",
        f"weft log: {checks['weft_log']}; {checks['pending_with_error']} pending events keep an error: "
        f"{checks['error_samples']}",
        f"correctness: {'PASS' if report['passed'] else 'FAIL'}; report in {REPORT}",
    ])


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--process-window", type=float, default=30.0,
                        help="seconds after the load over which the applied events are counted")
    parser.add_argument("--stripe-rate", type=float, default=20.0,
                        help="STRIPE_MAX_REQUESTS_PER_SECOND for weft and --limit for the loopback Stripe "
                             "(20: weft's default for sk_test_ keys)")
    parser.add_argument("--profile", action="store_true", help="py-spy the weft process during the measured run")
    add_background_option(parser)
    args = parser.parse_args()
    return Options(args.duration, args.warmup, args.connections, args.process_window, args.stripe_rate, args.profile,
                   args.background)


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
