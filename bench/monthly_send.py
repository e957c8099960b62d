"""Monthly care message run: `weft serve` sends this month's care message to N seeded members through a loopback Bird.

Usage: .venv/bin/python bench/monthly_send.py [--backend sqlite|postgres|both] [--members 100000] [--small 10000]
                                              [--rate-members 6000] [--skip-rate] [--skip-inbound]

For each backend, three runs, each on a fresh database seeded with that many eligible members (consent subscribed,
one completed free sign-up each) before `weft serve` starts:
- `small` and `full` (--small, --members) with WEFT_SMS_RATE_PER_SECOND=0 (unlimited): messages/s as the provider
  saw them, the peak RSS of weft's process tree, and the latency of LOVE webhooks driven at a fixed rate while the
  run sends;
- `rate` (--rate-members) with WEFT_SMS_RATE_PER_SECOND=200: the achieved steady-state rate.
Each run is triggered with POST /api/bird/send-monthly-messages and watched until the campaign is finished.
Checks: the provider accepted exactly one send per member and one reply per webhook, no reference twice; the
campaign says sent == members, failed == 0, pending == 0. A benchmark script, not a test: it exits 1 only when a
correctness check fails, never on the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import loadgen
import phonenumbers
import sqlalchemy as sa
from databases import DEFAULT_POSTGRES_URL, postgres_database, postgres_unavailable, sqlite_database
from inbound_webhook import InboundLove, free_port, run_event_loop
from processes import Processes, exit_on_sigterm, process_cpu_seconds

from weft.adapters.sql import schema
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPORT = RESULTS_DIR / "monthly_send.json"
ADMIN_TOKEN = "bench-admin-token"
CHANNEL_ID = "7d1f0c2a-5b3e-4c9d-8a7f-6e5d4c3b2a10"
FIRST_MEMBER = 2_000_000
"""Members are +1 415 200-0000 upwards (checked with phonenumbers before seeding); the webhooks come from
+1 212 200-0000 upwards (InboundLove), so no webhook is from a member."""
SEED_BATCH = 10_000
IDLE_SECONDS = 2.0
"""The inbound load reuses a keep-alive connection only if it has been idle for less than this."""
SAMPLE_SECONDS = 0.2
PROGRESS_SECONDS = 5.0
TARGET_MESSAGES_PER_S = 1500.0
TARGET_RATE = 200.0
TARGET_RATE_DEVIATION_PCT = 2.0
TARGET_RSS_RATIO = 1.5
TARGET_INBOUND_P99_MS = 50.0
QUIET_LOG = ("BIRD_SIGNING_KEY is not set",)
"""Warnings every bench run logs by design, left out of the log findings."""


@attrs.frozen
class Options:
    backends: tuple[str, ...]
    members: int
    small: int
    rate_members: int
    rate: float
    skip_rate: bool
    skip_inbound: bool
    inbound_rate: float
    postgres_url: str
    background: str | None
    provider_limit: float
    timeout: float
    drain_timeout: float
    profile: bool


@attrs.frozen
class RunSpec:
    name: str
    members: int
    rate: float | None
    """WEFT_SMS_RATE_PER_SECOND; None is unlimited."""
    inbound: bool


@attrs.frozen
class Ports:
    weft: int
    provider: int


def member_phone(index: int) -> str:
    return f"+1415{FIRST_MEMBER + index:07d}"


def check_member_numbers(members: int) -> None:
    """Fail fast if the number plan would seed an invalid number (weft would skip it as invalid_number)."""
    for index in [*range(0, members, max(1, members // 2000)), members - 1]:
        if not phonenumbers.is_valid_number(phonenumbers.parse(member_phone(index))):
            raise RuntimeError(f"{member_phone(index)} is not a valid number; change FIRST_MEMBER")


# --- databases -------------------------------------------------------------------------------------------------


def member_rows(index: int, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Member `index`: a subscribed free member with one completed free sign-up, as a web sign-up records it."""
    phone = member_phone(index)
    subscriber = {
        "phone": phone, "consent": "subscribed", "membership": "free", "consent_changed_at": at,
        "consent_message_id": None, "created_at": at, "updated_at": at,
    }
    payment = {
        "id": f"pay_free_bench_{index}", "phone": phone, "email": f"m{index}@example.org", "tier": "free",
        "amount_cents": 0, "payment_type": None, "status": "completed",
        "checkout_session_id": f"free_pay_free_bench_{index}", "past_due_notified": False, "phone_proven": True,
        "created_at": at, "updated_at": at,
    }
    return subscriber, payment


def seed(url: str, members: int) -> dict[str, Any]:
    """Migrate the schema and insert the members and their payments in one transaction; what it took."""
    check_member_numbers(members)
    started = time.perf_counter()
    engine = create_engine(url)
    try:
        migrate(engine)
        at = datetime.now(UTC).replace(tzinfo=None)  # the UtcDateTime columns store naive UTC
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                _copy_rows(connection, members, at)
            else:
                _insert_rows(connection, members, at)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE subscribers")
                connection.exec_driver_sql("ANALYZE payments")
    finally:
        engine.dispose()
    return {"members": members, "seconds": round(time.perf_counter() - started, 2)}


def _insert_rows(connection: sa.Connection, members: int, at: datetime) -> None:
    for first in range(0, members, SEED_BATCH):
        rows = [member_rows(i, at) for i in range(first, min(members, first + SEED_BATCH))]
        connection.execute(schema.subscribers.insert(), [subscriber for subscriber, _ in rows])
        connection.execute(schema.payments.insert(), [payment for _, payment in rows])


def _copy_rows(connection: sa.Connection, members: int, at: datetime) -> None:
    cursor = connection.connection.driver_connection.cursor()  # psycopg 3: COPY FROM STDIN
    for position, table in enumerate((schema.subscribers, schema.payments)):
        columns = [column.name for column in table.columns]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for index in range(members):
                row = member_rows(index, at)[position]
                copy.write_row([row.get(name) for name in columns])


# --- processes and sampling ------------------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """The environment without any Weft, Bird, Stripe or email setting of the caller's."""
    prefixes = ("WEFT_", "BIRD_", "STRIPE_", "SMTP_", "RESEND_", "NGROK_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, "PYTHONUNBUFFERED": "1"}


def weft_env(ports: Ports, database_url: str, rate: float | None) -> dict[str, str]:
    return {
        "WEFT_DATABASE_URL": database_url,
        "WEFT_PUBLIC_URL": f"http://{HOST}:{ports.weft}",
        "WEFT_SMS_PROVIDER": "bird",
        "BIRD_API_URL": f"http://{HOST}:{ports.provider}",
        "BIRD_API_KEY": "bench-key",
        "BIRD_WORKSPACE_ID": "bench-workspace",
        "BIRD_CHANNEL_ID": CHANNEL_ID,
        "WEFT_ADMIN_TOKEN": ADMIN_TOKEN,
        "WEFT_LINK_SECRET": "bench-link-secret",
        "WEFT_QUIET_HOURS": "off",
        "WEFT_SCHEDULER": "off",
        "WEFT_SMS_RATE_PER_SECOND": "0" if rate is None else f"{rate:g}",
        "WEFT_JOIN_WORDS": "LOVE",
        "WEFT_PROVIDER_SENDS_KEYWORD_REPLIES": "false",
    }


def start_servers(processes: Processes, spec: RunSpec, prefix: str, ports: Ports, url: str, options: Options,
                  workdir: Path) -> None:
    python = sys.executable
    provider = [python, str(BENCH_DIR / "loopback_provider.py"), "--port", str(ports.provider)]
    if options.provider_limit > 0:
        provider += ["--max-per-second", f"{options.provider_limit:g}"]
    processes.start(f"{prefix}-provider", provider, clean_environ(), workdir)
    weft = [str(Path(python).parent / "weft"), "serve", "--host", HOST, "--port", str(ports.weft)]
    if options.background is not None:
        weft += ["--background", options.background]
    # cwd is the temporary directory, so no developer .env is read.
    processes.start(f"{prefix}-weft", weft, {**clean_environ(), **weft_env(ports, url, spec.rate)}, workdir)


async def wait_ready(processes: Processes, client: httpx.AsyncClient, ports: Ports, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for url in (f"http://{HOST}:{ports.provider}/stats", f"http://{HOST}:{ports.weft}/healthz"):
        while True:
            processes.check_alive()
            try:
                if (await client.get(url, timeout=1.0)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout:.0f}s")
            await asyncio.sleep(0.1)


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (children of any of their threads)."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                queue.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                pass
    return tree


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples VmRSS of every process in weft's tree: the peak of the sum, and the largest single process."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak_total_kib = 0
        self.peak_single_kib = 0
        self.last_total_kib = 0
        self.most_processes = 0
        self.samples = 0

    def sample(self) -> int:
        sizes = [rss_kib(pid) for pid in process_tree(self._pid)]
        self.last_total_kib = sum(sizes)
        self.peak_total_kib = max(self.peak_total_kib, self.last_total_kib)
        self.peak_single_kib = max(self.peak_single_kib, *sizes)
        self.most_processes = max(self.most_processes, len(sizes))
        self.samples += 1
        return self.last_total_kib

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
            except TimeoutError:
                pass

    def summary(self, baseline_kib: int) -> dict[str, Any]:
        return {"peak_total_mib": mib(self.peak_total_kib), "peak_single_mib": mib(self.peak_single_kib),
                "before_trigger_mib": mib(baseline_kib), "growth_mib": mib(self.peak_total_kib - baseline_kib),
                "processes": self.most_processes, "samples": self.samples}


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, all processes) since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time used so far by the running PostgreSQL server processes on this machine (whoever they serve)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += process_cpu_seconds(int(entry.name))
            except OSError:
                pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += process_cpu_seconds(member)
        except OSError:
            pass
    return total


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on `pid` until stopped (SIGINT writes the profile), when installed; GIL holder only, as in
    inbound_webhook.py: the sending process is GIL-bound."""
    py_spy = shutil.which("py-spy") or shutil.which(str(Path(sys.executable).parent / "py-spy"))
    if py_spy is None:
        print("py-spy not found (pip install py-spy); running without a profile", file=sys.stderr)
        return None
    argv = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil", "--threads",
            "--nonblocking", "--output", str(output)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def sending_pid(pid: int) -> int:
    """The process that sends: `weft serve`'s worker child when it has one, else `weft serve` itself."""
    children = process_tree(pid)[1:]
    return children[0] if children else pid


# --- the inbound load ----------------------------------------------------------------------------------------------


@attrs.define
class InboundResult:
    latencies: list[float] = attrs.field(factory=list)
    statuses: Counter[int] = attrs.field(factory=Counter)
    received: int = 0
    error_samples: list[str] = attrs.field(factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))] * 1000.0

    def summary(self, rate: float) -> dict[str, Any]:
        return {"rate_per_s": rate, "sent": self.sent, "ok_2xx": self.ok, "received": self.received,
                "p50_ms": round(self.percentile_ms(0.50), 2), "p99_ms": round(self.percentile_ms(0.99), 2),
                "max_ms": round(self.percentile_ms(1.0), 2), "statuses": dict(self.statuses),
                "error_samples": self.error_samples}


async def drive_inbound(port: int, rate: float, stop: asyncio.Event, result: InboundResult) -> None:
    """Open loop: a LOVE webhook every 1/rate s on an idle keep-alive connection (a new one when none is idle)
    until `stop`; latency counts from when the webhook was due, so a stalled server cannot hide its stall."""
    make = InboundLove(port)
    make.check_numbers(upto=100_000)
    idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
    tasks: set[asyncio.Task[None]] = set()

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # uvicorn closes a keep-alive connection idle for 5 s: reusing one about to close would fail the webhook
        # for the client's sake, so connections idle for longer than IDLE_SECONDS are closed here first.
        while idle:
            last_used, reader, writer = idle.pop()
            if time.perf_counter() - last_used < IDLE_SECONDS and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(HOST, port)

    async def one(due: float, request: bytes) -> None:
        try:
            reader, writer = await connection()
            writer.write(request)
            status, body = await asyncio.wait_for(loadgen.read_response(reader), 60.0)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            result.statuses[0] += 1
            if len(result.error_samples) < 5:
                result.error_samples.append(f"{type(exc).__name__}: {exc}")
            return
        result.latencies.append(time.perf_counter() - due)
        result.statuses[status] += 1
        result.received += b'"received"' in body
        if not 200 <= status < 300 and len(result.error_samples) < 5:
            result.error_samples.append(f"{status}: {body[:200].decode('utf-8', 'replace')}")
        idle.append((time.perf_counter(), reader, writer))

    started = time.perf_counter()
    count = 0
    while not stop.is_set():
        due = started + count / rate
        if (delay := due - time.perf_counter()) > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except TimeoutError:
                pass
        task = asyncio.get_running_loop().create_task(one(due, make()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        count += 1
    if tasks:
        await asyncio.gather(*tasks)
    for _, _, writer in idle:
        writer.close()


# --- one run ---------------------------------------------------------------------------------------------------


class Control:
    """The bench's calls to weft's admin API and to the provider's stats."""

    def __init__(self, client: httpx.AsyncClient, ports: Ports, month: str) -> None:
        self._client, self._ports, self.month = client, ports, month
        self._auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def trigger(self) -> dict[str, Any]:
        response = await self._client.post(f"http://{HOST}:{self._ports.weft}/api/bird/send-monthly-messages",
                                           params={"month": self.month}, headers=self._auth)
        if response.status_code != 202:
            raise RuntimeError(f"trigger answered {response.status_code}: {response.text[:300]}")
        campaign: dict[str, Any] = response.json()["campaign"]
        return campaign

    async def campaign(self) -> dict[str, Any]:
        response = await self._client.get(
            f"http://{HOST}:{self._ports.weft}/api/admin/campaigns/care-{self.month}", headers=self._auth)
        response.raise_for_status()
        campaign: dict[str, Any] = response.json()["campaign"]
        return campaign

    async def stats(self) -> dict[str, Any]:
        response = await self._client.get(f"http://{HOST}:{self._ports.provider}/stats")
        stats: dict[str, Any] = response.json()
        return stats

    async def times(self, prefix: str) -> list[float]:
        response = await self._client.get(f"http://{HOST}:{self._ports.provider}/times", params={"prefix": prefix})
        times: list[float] = response.json()["times"]
        return times


def prefix_stats(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    empty = {"accepted": 0, "references": 0, "first_at": None, "last_at": None}
    found: dict[str, Any] = stats["by_prefix"].get(prefix, empty)
    return found


async def watch(spec: RunSpec, label: str, processes: Processes, control: Control, sampler: RssSampler,
                inbound_stop: asyncio.Event, inbound: InboundResult,
                timeout: float) -> tuple[dict[str, Any], float | None]:
    """Poll the provider (cheap) and, less often, the campaign (a count over the outbox) until the campaign is
    finished or the timeout passes; prints progress. Stops the inbound load once every care message went out."""
    started = time.monotonic()
    last_print, last_sent, last_campaign_poll = started, 0, 0.0
    campaign: dict[str, Any] = {}
    while True:
        processes.check_alive()
        now = time.monotonic()
        sent = prefix_stats(await control.stats(), "care")["accepted"]
        if sent >= spec.members:
            inbound_stop.set()
        if now - last_campaign_poll >= (0.5 if sent >= spec.members else PROGRESS_SECONDS):
            campaign, last_campaign_poll = await control.campaign(), now
            if campaign["state"] == "finished":
                inbound_stop.set()
                return campaign, time.monotonic() - started
        if now - last_print >= PROGRESS_SECONDS:
            rate = (sent - last_sent) / (now - last_print)
            print(f"  [{label}] {now - started:6.1f} s: {sent:,}/{spec.members:,} sent ({rate:,.0f}/s), "
                  f"campaign {campaign.get('state')}, rss {mib(sampler.last_total_kib)} MiB, "
                  f"webhooks {inbound.sent}", flush=True)
            last_print, last_sent = now, sent
        if now - started > timeout:
            inbound_stop.set()
            return campaign, None
        await asyncio.sleep(0.5)


def steady_rate(times: list[float]) -> dict[str, Any]:
    """Sends between the 5th and 95th percentile send time, divided by that span; and per-tenth rates."""
    ordered = sorted(times)
    n = len(ordered)
    if n < 20:
        return {"rate_per_s": None, "deciles_per_s": []}
    low, high = int(0.05 * n), int(0.95 * n)
    span = ordered[high] - ordered[low]
    tenths = [ordered[(n - 1) * k // 10] for k in range(11)]
    deciles = [round((n / 10) / (b - a), 1) if b > a else None for a, b in zip(tenths, tenths[1:], strict=False)]
    return {"rate_per_s": round((high - low) / span, 2) if span > 0 else None, "deciles_per_s": deciles}


def log_findings(log: Path) -> dict[str, Any]:
    """Warnings, errors and tracebacks in weft's log (but the expected start-up warning), apart for the run and
    for the shutdown (from uvicorn's "Shutting down" on: the bench stops weft's process group with SIGTERM)."""
    pattern = re.compile(r" (WARNING|ERROR|CRITICAL) |^Traceback")
    counts: dict[str, Counter[str]] = {"counts": Counter(), "at_shutdown": Counter()}
    samples: list[str] = []
    part = "counts"
    for line in log.read_text(errors="replace").splitlines():
        if "uvicorn.error: Shutting down" in line:
            part = "at_shutdown"
        found = pattern.search(line)
        if found is None or any(quiet in line for quiet in QUIET_LOG):
            continue
        counts[part][found.group(1) or "Traceback"] += 1
        if len(samples) < 5:
            samples.append(line[:300])
    return {**{part: dict(found) for part, found in counts.items()}, "samples": samples}


async def drain_replies(control: Control, expected: int, timeout: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    while True:
        stats = await control.stats()
        waited = time.monotonic() - started
        if prefix_stats(stats, "reply")["accepted"] >= expected or waited > timeout:
            return stats, round(waited, 2)
        await asyncio.sleep(0.2)


async def measure(spec: RunSpec, label: str, processes: Processes, weft: str, ports: Ports,
                  options: Options) -> dict[str, Any]:
    month = datetime.now(UTC).strftime("%Y-%m")
    async with httpx.AsyncClient(timeout=30.0) as client:
        control = Control(client, ports, month)
        await wait_ready(processes, client, ports)
        pid = processes.pid(weft)
        sampler = RssSampler(pid)
        stop_sampling, inbound_stop = asyncio.Event(), asyncio.Event()
        sampling = asyncio.get_running_loop().create_task(sampler.run(stop_sampling))
        await asyncio.sleep(1.0)  # let the worker (if any) start and the RSS settle
        baseline = sampler.sample()
        provider_pid = processes.pid(label + "-provider")
        cpu_before = (tree_cpu_seconds(pid), process_cpu_seconds(provider_pid), time.process_time(),
                      postgres_cpu_seconds(), busy_cpu_seconds())
        profiler = None
        if options.profile and spec.name == "full":
            profiler = start_profiler(sending_pid(pid), RESULTS_DIR / f"{label}-profile.txt")
        triggered_at = time.time()
        trigger = await control.trigger()
        inbound = InboundResult()
        inbound_task = None
        if spec.inbound and options.inbound_rate > 0:
            inbound_task = asyncio.get_running_loop().create_task(
                drive_inbound(ports.weft, options.inbound_rate, inbound_stop, inbound))
        campaign, finished_after = await watch(spec, label, processes, control, sampler, inbound_stop, inbound,
                                               options.timeout)
        if inbound_task is not None:
            await inbound_task
        stop_sampling.set()
        await sampling
        stop_profiler(profiler)
        used = (tree_cpu_seconds(pid) - cpu_before[0], process_cpu_seconds(provider_pid) - cpu_before[1],
                time.process_time() - cpu_before[2], postgres_cpu_seconds() - cpu_before[3])
        # Whatever else ran meanwhile (another test run, say) took CPU from these two cores: worth knowing.
        others = busy_cpu_seconds() - cpu_before[4] - sum(used)
        cpu = {"weft_tree": round(used[0], 2), "provider": round(used[1], 2), "bench": round(used[2], 2),
               "postgres": round(used[3], 2), "others": round(max(0.0, others), 2)}
        stats, reply_wait = await drain_replies(control, inbound.ok, options.drain_timeout)
        times = await control.times("care")
    care = prefix_stats(stats, "care")
    span = (care["last_at"] - care["first_at"]) if care["first_at"] is not None else 0.0
    result: dict[str, Any] = {
        "members": spec.members,
        "rate_setting": spec.rate,
        "campaign_at_trigger": {k: trigger.get(k) for k in ("state", "eligible", "sent", "pending")},
        "campaign": {k: campaign.get(k) for k in ("state", "eligible", "sent", "failed", "pending", "suppressed",
                                                   "expired", "possible_duplicates", "skipped", "passes",
                                                   "started_at", "finished_at")},
        "messages_per_s": round(care["accepted"] / span, 1) if span > 0 else None,
        "first_to_last_send_s": round(span, 2),
        "trigger_to_first_send_s": round(care["first_at"] - triggered_at, 2) if care["first_at"] else None,
        "trigger_to_last_send_s": round(care["last_at"] - triggered_at, 2) if care["last_at"] else None,
        "trigger_to_finished_s": round(finished_after, 2) if finished_after is not None else None,
        "steady": steady_rate(times),
        "rss": sampler.summary(baseline),
        "cpu_seconds": cpu,
        "provider": {k: v for k, v in stats.items() if k != "by_prefix"} | {"by_prefix": stats["by_prefix"]},
        "reply_wait_s": reply_wait,
    }
    if spec.inbound and options.inbound_rate > 0:
        result["inbound"] = inbound.summary(options.inbound_rate)
    result["checks"] = checks(spec, result, inbound if spec.inbound and options.inbound_rate > 0 else None)
    return result


def checks(spec: RunSpec, result: dict[str, Any], inbound: InboundResult | None) -> dict[str, bool]:
    campaign, stats = result["campaign"], result["provider"]
    care, replies = prefix_stats(stats, "care"), prefix_stats(stats, "reply")
    webhooks = inbound.ok if inbound is not None else 0
    found = {
        "finished": campaign.get("state") == "finished",
        "campaign_counts": campaign.get("eligible") == spec.members and campaign.get("sent") == spec.members
        and campaign.get("failed") == 0 and campaign.get("pending") == 0
        and campaign.get("possible_duplicates") == 0,
        "one_send_per_member": care["accepted"] == spec.members and care["references"] == spec.members,
        "no_reference_twice": stats["duplicates"] == 0,
        "requests_match": stats["accepted"] == spec.members + webhooks
        and stats["requests"] == stats["accepted"] + stats["throttled"]
        and set(stats["by_prefix"]) <= {"care", "reply"},
    }
    if inbound is not None:
        found["webhooks_all_received"] = inbound.ok == inbound.sent and inbound.received == inbound.sent
        found["one_reply_per_webhook"] = replies["accepted"] == webhooks and replies["references"] == webhooks
    return found


async def run_one(spec: RunSpec, backend: str, options: Options, workdir: Path) -> dict[str, Any]:
    label = f"monthly-{backend}-{spec.name}"
    print(f"{backend} {spec.name}: seeding {spec.members:,} members", flush=True)
    database = (sqlite_database(workdir, spec.name) if backend == "sqlite"
                else postgres_database(options.postgres_url))
    with database as url:
        seeded = seed(url, spec.members)
        print(f"{backend} {spec.name}: seeded in {seeded['seconds']} s; running "
              f"(rate {'unlimited' if spec.rate is None else f'{spec.rate:g}/s'}"
              f"{', inbound ' + format(options.inbound_rate, 'g') + '/s' if spec.inbound else ''})", flush=True)
        processes = Processes(log_dir=RESULTS_DIR)
        ports = Ports(weft=free_port(), provider=free_port())
        try:
            start_servers(processes, spec, label, ports, url, options, workdir)
            result = await measure(spec, label, processes, f"{label}-weft", ports, options)
        finally:
            processes.stop_all()
    result["seed"] = seeded
    result["weft_log"] = {"path": str(RESULTS_DIR / f"{label}-weft.log"),
                          **log_findings(RESULTS_DIR / f"{label}-weft.log")}
    result["passed"] = all(result["checks"].values())
    print(f"{backend} {spec.name}: {render_run(spec.name, result)}", flush=True)
    return result


# --- the whole benchmark ---------------------------------------------------------------------------------------


def specs(options: Options) -> list[RunSpec]:
    inbound = not options.skip_inbound
    runs = [RunSpec("small", options.small, None, inbound), RunSpec("full", options.members, None, inbound)]
    if not options.skip_rate:
        runs.append(RunSpec("rate", options.rate_members, options.rate, False))
    return runs


def figures(runs: dict[str, dict[str, Any]], options: Options) -> dict[str, Any]:
    small, full, rate = runs.get("small"), runs.get("full"), runs.get("rate")
    found: dict[str, Any] = {}
    if full is not None:
        found["messages_per_s"] = full["messages_per_s"]
        found["messages_per_s_met"] = (full["messages_per_s"] or 0) >= TARGET_MESSAGES_PER_S
        if "inbound" in full:
            found["inbound_p99_ms"] = full["inbound"]["p99_ms"]
            found["inbound_p99_met"] = full["inbound"]["p99_ms"] < TARGET_INBOUND_P99_MS
    if small is not None and full is not None and small["rss"]["peak_total_mib"]:
        ratio = full["rss"]["peak_total_mib"] / small["rss"]["peak_total_mib"]
        found["rss_ratio"] = round(ratio, 3)
        found["rss_ratio_met"] = ratio <= TARGET_RSS_RATIO
        found["rss_growth_mib"] = {"small": small["rss"]["growth_mib"], "full": full["rss"]["growth_mib"]}
    if rate is not None:
        achieved = rate["steady"]["rate_per_s"]
        found["achieved_rate_per_s"] = achieved
        if achieved is not None:
            deviation = (achieved - options.rate) / options.rate * 100
            found["rate_deviation_pct"] = round(deviation, 2)
            found["rate_met"] = abs(deviation) <= TARGET_RATE_DEVIATION_PCT
    return found


async def bench(options: Options, workdir: Path, report: dict[str, Any]) -> None:
    for backend in options.backends:
        entry: dict[str, Any] = {"runs": {}}
        report["backends"][backend] = entry
        if backend == "postgres" and (reason := postgres_unavailable(options.postgres_url)) is not None:
            print(f"postgres: skipped ({reason})", flush=True)
            entry["skipped"] = reason
            continue
        for spec in specs(options):
            entry["runs"][spec.name] = await run_one(spec, backend, options, workdir)
            entry["figures"] = figures(entry["runs"], options)
            write_report(report)


def write_report(report: dict[str, Any]) -> None:
    report["passed"] = all(run["passed"] for entry in report["backends"].values()
                           for run in entry["runs"].values())
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


def render_run(name: str, run: dict[str, Any]) -> str:
    campaign, rss, provider = run["campaign"], run["rss"], run["provider"]
    parts = [f"{run['members']:,} members, {run['messages_per_s'] or 0:,.0f} msg/s "
             f"(first to last send {run['first_to_last_send_s']} s, trigger to finished "
             f"{run['trigger_to_finished_s']} s), peak RSS {rss['peak_total_mib']} MiB in {rss['processes']} "
             f"process(es) (largest {rss['peak_single_mib']} MiB; {rss['before_trigger_mib']} MiB before the trigger, "
             f"+{rss['growth_mib']} MiB)"]
    if run["rate_setting"] is not None:
        parts.append(f"steady {run['steady']['rate_per_s']}/s at WEFT_SMS_RATE_PER_SECOND={run['rate_setting']:g}")
    if "inbound" in run:
        hook = run["inbound"]
        parts.append(f"webhooks {hook['sent']} at {hook['rate_per_s']:g}/s: p50 {hook['p50_ms']} ms, "
                     f"p99 {hook['p99_ms']} ms, max {hook['max_ms']} ms, {hook['ok_2xx']} 2xx")
    parts.append(f"campaign {campaign['state']} sent {campaign['sent']} failed {campaign['failed']} pending "
                 f"{campaign['pending']}; provider {provider['requests']} requests, {provider['duplicates']} "
                 f"duplicates, {provider['throttled']} throttled, {provider['lookups']} lookups; cpu "
                 f"{run['cpu_seconds']}; log {run['weft_log']['counts'] or 'clean'}"
                 f"{', at shutdown ' + str(run['weft_log']['at_shutdown']) if run['weft_log']['at_shutdown'] else ''}")
    failed = [check for check, ok in run["checks"].items() if not ok]
    parts.append("checks PASS" if not failed else f"checks FAIL: {', '.join(failed)}")
    return "\n    ".join(parts)


def render(report: dict[str, Any]) -> str:
    met = {True: "met", False: "MISSED"}
    lines = []
    for backend, entry in report["backends"].items():
        if "skipped" in entry:
            lines.append(f"{backend}: skipped ({entry['skipped']})")
            continue
        lines.append(f"{backend}:")
        for name, run in entry["runs"].items():
            lines.append(f"  {name:5} {render_run(name, run)}")
        f = entry.get("figures", {})
        if "messages_per_s" in f:
            limited = report["settings"]["provider_limit"]
            lines.append(f"  messages/s unlimited: {f['messages_per_s'] or 0:,.0f} "
                         f"(target >= {TARGET_MESSAGES_PER_S:,.0f}: {met[f['messages_per_s_met']]})"
                         + (f", the provider refusing beyond {limited:g}/s" if limited else ""))
        if "achieved_rate_per_s" in f:
            deviation = f.get("rate_deviation_pct")
            lines.append(f"  achieved rate: {f['achieved_rate_per_s']}/s, {deviation:+.2f} % "
                         f"(target within {TARGET_RATE_DEVIATION_PCT:g} %: {met[f.get('rate_met', False)]})"
                         if deviation is not None else "  achieved rate: too few sends to tell")
        if "rss_ratio" in f:
            lines.append(f"  peak RSS {entry['runs']['full']['members']:,} / {entry['runs']['small']['members']:,}"
                         f" members: {f['rss_ratio']:.2f}x (target <= {TARGET_RSS_RATIO}x: {met[f['rss_ratio_met']]}); "
                         f"growth over idle {f['rss_growth_mib']['small']} / {f['rss_growth_mib']['full']} MiB")
        if "inbound_p99_ms" in f:
            lines.append(f"  inbound webhook p99 while sending: {f['inbound_p99_ms']} ms "
                         f"(target < {TARGET_INBOUND_P99_MS:g} ms: {met[f['inbound_p99_met']]})")
    lines.append(f"correctness: {'PASS' if report['passed'] else 'FAIL'}; report in {REPORT}")
    return "\n".join(lines)


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--members", type=int, default=100_000, help="members of the full run")
    parser.add_argument("--small", type=int, default=10_000, help="members of the small run (RSS comparison)")
    parser.add_argument("--rate-members", type=int, default=6_000, help="members of the paced run")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="WEFT_SMS_RATE_PER_SECOND of the paced run")
    parser.add_argument("--skip-rate", action="store_true", help="no paced run")
    parser.add_argument("--skip-inbound", action="store_true", help="no webhooks during the unlimited runs")
    parser.add_argument("--inbound-rate", type=float, default=20.0, help="LOVE webhooks a second while sending")
    parser.add_argument("--postgres-url", default=os.environ.get("WEFT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help="server and database to create a scratch schema in (default $WEFT_TEST_POSTGRES_URL "
                             f"or {DEFAULT_POSTGRES_URL})")
    parser.add_argument("--background", choices=["process", "inline"], default=None,
                        help="passed to `weft serve` (default: weft's own choice, inline without Stripe)")
    parser.add_argument("--provider-limit", type=float, default=0.0,
                        help="the loopback provider answers 429 beyond this many sends a second (0: never)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for a run to finish")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to wait for webhook replies")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the sending process (the worker, or weft serve when inline) during each full run")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    return Options(backends, args.members, args.small, args.rate_members, args.rate, args.skip_rate,
                   args.skip_inbound, args.inbound_rate, args.postgres_url, args.background, args.provider_limit,
                   args.timeout, args.drain_timeout, args.profile)


def main() -> int:
    options = parse_options()
    exit_on_sigterm()
    RESULTS_DIR.mkdir(exist_ok=True)
    report: dict[str, Any] = {
        "settings": {**attrs.asdict(options), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                     "postgres_url": options.postgres_url, "quiet_hours": "off", "scheduler": "off"},
        "targets": {"messages_per_s_min": TARGET_MESSAGES_PER_S, "rate": options.rate,
                    "rate_deviation_pct_max": TARGET_RATE_DEVIATION_PCT, "rss_ratio_max": TARGET_RSS_RATIO,
                    "inbound_p99_ms_max": TARGET_INBOUND_P99_MS},
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="weft-bench-monthly-") as tmp:
        run_event_loop(run_all(options, Path(tmp), report))
    write_report(report)
    print(render(report))
    return 0 if report["passed"] else 1


async def run_all(options: Options, workdir: Path, report: dict[str, Any]) -> dict[str, Any]:
    await bench(options, workdir, report)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
