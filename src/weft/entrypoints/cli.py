from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence

from dependency_injector import providers

from weft.adapters.prometheus import counted_with_children
from weft.application.paging import Position
from weft.application.phone_numbers import normalise_phone
from weft.bootstrap import bootstrap, configure_logging, listen_url
from weft.config import ConfigError, Settings
from weft.containers import Container
from weft.domain.errors import InvalidPhoneNumber, ProviderUnavailable
from weft.domain.messages import InboundSms
from weft.entrypoints import airtable_cli, campaign_cli
from weft.entrypoints.http.app import close_clients
from weft.entrypoints.runtime import Runtime

WORKER_POLL_SECONDS = 0.1
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    listening = listen_url(args.host, args.port) if args.command == "serve" else None
    try:
        container = bootstrap(listening=listening)
    except ConfigError as exc:
        print(f"weft: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(container, args))
    except InvalidPhoneNumber as exc:
        print(f"weft: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description="Weft: an SMS-first community membership service")
    commands = parser.add_subparsers(required=True, dest="command")
    serve = commands.add_parser("serve", help="apply migrations and start the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--background", choices=["process", "inline"], default=None,
        help="where applying inbound texts, outbox delivery, journeys and cancellations run: a `weft worker` "
             "child process on its own core (the default on PostgreSQL with Stripe), or inside the web process "
             "(the default on SQLite, whose single write lock would starve a second process under load)",
    )
    serve.set_defaults(run=_serve)
    worker = commands.add_parser("worker", help="run the background work (inbound texts, sends, journeys, "
                                               "cancellations, campaigns, the monthly scheduler) until stopped")
    worker.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(run=_worker)
    simulate = commands.add_parser("simulate-sms", help="process a text as if it came from the SMS provider")
    simulate.add_argument("--from", dest="sender", required=True, help="sender phone, e.g. +14155550123")
    simulate.add_argument("text")
    simulate.set_defaults(run=_simulate)
    sync = commands.add_parser("sync-bird", help="fetch texts Bird handled without Weft (Flow Builder automations, "
                                                  "lost webhooks) since the last sync, apply them, send what is due")
    sync.set_defaults(run=_sync_bird)
    listing = commands.add_parser("subscribers", help="list subscribers as a table, newest first")
    listing.add_argument("--limit", type=int, default=None, help="show at most this many")
    listing.set_defaults(run=_subscribers)
    campaign_cli.add_commands(commands)
    airtable_cli.add_commands(commands)
    return parser


def _serve(container: Container, args: argparse.Namespace) -> int:
    import uvicorn

    from weft.entrypoints.http.app import create_app

    inline = args.background == "inline" or (args.background is None and _inline_by_default(container.settings()))
    with contextlib.ExitStack() as stack:
        child = None
        if not inline:
            stack.enter_context(counted_with_children())  # /metrics counts the worker's sends too
            child = WorkerProcess([sys.executable, "-m", "weft.entrypoints.cli", "worker", "--exit-with-parent"])
        try:
            app = create_app(container, background=inline)
            freeze_startup_objects()
            # uvicorn shuts down on SIGTERM or SIGINT, then raises the signal again: exiting here, cleanly, lets
            # the worker be stopped and the counts' directory removed rather than dying on the signal.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, _exit_cleanly)
            # log_config=None: uvicorn logs through our handlers, so its access log is masked too.
            uvicorn.run(app, host=args.host, port=args.port, log_config=None)
        finally:
            if child is not None:
                child.stop()
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def freeze_startup_objects() -> None:
    """Move what start-up built (modules, schema, compiled statements, the app) out of the garbage collector's
    reach: a full collection then scans only what requests create, a tenth of a webhook's CPU otherwise."""
    gc.collect()
    gc.freeze()


def _inline_by_default(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


class WorkerProcess:
    """The `weft worker` child of `weft serve`, restarted whenever it dies (a clean exit means it was told to stop),
    so queued work never stalls."""

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._stopping = threading.Event()
        self._child = subprocess.Popen(command)
        threading.Thread(target=self._supervise, name="weft-worker-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            code = self._child.wait()
            if self._stopping.is_set():
                return
            if code == 0:  # it was told to stop (a SIGTERM to the whole group): the service is shutting down
                log.info("weft worker stopped")
                return
            log.error("weft worker exited with code %s; restarting it", code)
            if self._stopping.wait(1.0):
                return
            self._child = subprocess.Popen(self._command)

    def stop(self) -> None:
        self._stopping.set()
        self._child.terminate()
        try:
            self._child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            self._child.kill()


def _worker(container: Container, args: argparse.Namespace) -> int:
    # No commit in the web process can wake this one, so it polls often; an idle poll is one short read.
    container.worker_poll_seconds.override(providers.Object(WORKER_POLL_SECONDS))
    freeze_startup_objects()
    asyncio.run(_run_until_stopped(container, args.exit_with_parent))
    return 0


async def _run_until_stopped(container: Container, exit_with_parent: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if exit_with_parent:
        loop.create_task(_watch_parent(os.getppid(), stop))
    runtime = Runtime(container)
    await runtime.start()
    await stop.wait()
    await runtime.stop()
    await close_clients(container)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    # `weft serve` may be killed (SIGKILL, the OOM killer) without reaching its cleanup.
    while os.getppid() == parent:
        await asyncio.sleep(1)
    log.info("parent process %d is gone; stopping", parent)
    stop.set()


def _simulate(container: Container, args: argparse.Namespace) -> int:
    settings = container.settings()
    message = InboundSms(
        provider_id=f"simulated-{uuid.uuid4().hex}",
        sender=normalise_phone(args.sender, settings.default_region),
        text=args.text,
    )
    return asyncio.run(_simulate_async(container, message))


async def _simulate_async(container: Container, message: InboundSms) -> int:
    try:
        runtime = Runtime(container, scheduler=False)
        runtime.register()
        outcome = await container.handle_inbound_sms()(message)
        await runtime.drain()
        detail = await container.views().subscriber_detail(message.sender)
    finally:
        await close_clients(container)
    print(f"{message.sender.e164} texted {message.text!r}: {outcome.value}")
    if detail is not None:
        subscriber = detail.subscriber
        print(f"consent: {subscriber.consent.value}, membership: {subscriber.membership.value}")
        for entry in detail.outbound:
            if entry.created_at >= detail.inbound[-1].received_at:
                print(f"reply ({entry.status.value}): {entry.message.text}")
    return 0


def _sync_bird(container: Container, args: argparse.Namespace) -> int:
    if not container.settings().bird_sync_available:
        print("weft: the Bird sync needs BIRD_API_KEY, BIRD_WORKSPACE_ID and BIRD_CHANNEL_ID", file=sys.stderr)
        return 2
    return asyncio.run(_sync_bird_async(container))


async def _sync_bird_async(container: Container) -> int:
    try:
        runtime = Runtime(container, scheduler=False)
        runtime.register()
        summary = await container.sync_bird()()
        await runtime.drain()
    except ProviderUnavailable as exc:
        print(f"weft: {exc}; run it again later (what was read is kept)", file=sys.stderr)
        return 1
    finally:
        await close_clients(container)
    if summary.busy:
        print("weft: another process is running the Bird sync", file=sys.stderr)
        return 1
    print(f"fetched {summary.fetched} messages in {summary.pages} pages: {summary.new_inbound} new inbound, "
          f"{summary.new_outbound} new outbound, {summary.keyword_changes} keyword changes")
    return 0


SUBSCRIBER_COLUMNS = (("PHONE", 16), ("CONSENT", 10), ("TIER", 16), ("LAST MESSAGE", 30), ("UPDATED", 16))


def _subscribers(container: Container, args: argparse.Namespace) -> int:
    """Newest first, a page of 500 at a time, so a large community is never held in memory at once."""
    _print_row([name for name, _ in SUBSCRIBER_COLUMNS])
    asyncio.run(_print_subscribers(container, args.limit))
    container.store().close()
    return 0


async def _print_subscribers(container: Container, limit: int | None) -> None:
    views, after, shown = container.views(), None, 0
    while limit is None or shown < limit:
        size = 500 if limit is None else min(500, limit - shown)
        page = await views.subscribers(after=after, limit=size)
        for s in page.items:
            _print_row([s.phone.e164, s.consent.value, s.tier.label,
                        (s.last_message or "")[:30], s.updated_at.strftime("%Y-%m-%d %H:%M")])
        shown += len(page.items)
        if page.next is None:
            return
        after = Position.decode(page.next)


def _print_row(cells: list[str]) -> None:
    print("  ".join(cell.ljust(width) for cell, (_, width) in zip(cells, SUBSCRIBER_COLUMNS, strict=True)).rstrip())


if __name__ == "__main__":
    raise SystemExit(main())
