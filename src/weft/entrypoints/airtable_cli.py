"""`weft airtable check|push|import|status`: the organisers' Airtable base from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from tqdm import tqdm

from weft.application.import_base import ImportReport
from weft.application.views import MirrorStatus
from weft.containers import Container
from weft.domain.errors import MirrorRejected, MirrorUnavailable
from weft.entrypoints.http.app import close_clients

T = TypeVar("T")
STALL_SECONDS = 90.0
"""How long `push` waits on copies that cannot go yet (a 429 pauses the base for 30 s) before leaving them to the
running service."""


def add_commands(commands: Any) -> None:
    airtable = commands.add_parser("airtable", help="the organisers' Airtable base: check it, fill it, import it")
    actions = airtable.add_subparsers(required=True, dest="action")
    actions.add_parser("check", help="say which tables or fields the base lacks or has of the wrong type") \
        .set_defaults(run=check)
    actions.add_parser("push", help="copy every number and payment to the base again (a full reconcile)") \
        .set_defaults(run=push)
    imports = actions.add_parser("import", help="create the base's numbers and payments in Weft, once")
    imports.add_argument("--dry-run", action="store_true", help="say what it would do and change nothing")
    imports.set_defaults(run=import_base)
    actions.add_parser("status", help="the copies waiting, the last push that landed, the last error") \
        .set_defaults(run=status)


def check(container: Container, args: argparse.Namespace) -> int:
    if not _configured(container):
        return 2
    try:
        problems = asyncio.run(_closing(container, container.organiser_base().check()))
    except (MirrorUnavailable, MirrorRejected) as exc:
        print(f"weft: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    if not problems:
        settings = container.settings()
        print(f'The base is ready: "{settings.airtable_phone_numbers_table}" and '
              f'"{settings.airtable_payments_table}" have every field Weft writes.')
    return 1 if problems else 0


def import_base(container: Container, args: argparse.Namespace) -> int:
    if not _configured(container):
        return 2
    try:
        report = asyncio.run(_closing(container, container.import_from_base()(dry_run=args.dry_run)))
    except (MirrorUnavailable, MirrorRejected) as exc:
        print(f"weft: {exc}; nothing was imported", file=sys.stderr)
        return 1
    print_report(report)
    return 0


def print_report(report: ImportReport) -> None:
    verb = "would create" if report.dry_run else "created"
    print(f"{'Dry run: nothing was changed. ' if report.dry_run else ''}Weft {verb} {report.numbers} numbers "
          f"({report.opted_out} opted out) and {report.payments} payments ({report.memberships} memberships); "
          f"{report.already_in_weft} were in Weft already.")
    if report.problems:
        print(f"{len(report.problems)} rows were not imported:")
        for problem in report.problems:
            print(f"  {problem}")


def push(container: Container, args: argparse.Namespace) -> int:
    if not _configured(container):
        return 2
    return asyncio.run(_closing(container, _push(container)))


def status(container: Container, args: argparse.Namespace) -> int:
    if not _configured(container):
        return 2
    print_status(asyncio.run(_closing(container, container.views().mirror_status())))
    return 0


def print_status(found: MirrorStatus) -> None:
    backlog = found.backlog
    print(f"waiting: {backlog.waiting} copies ({backlog.failing} failed at least once)")
    print(f"oldest waiting change: {backlog.oldest.isoformat() if backlog.oldest else '-'}")
    print(f"last push that landed: {found.last_pushed_at.isoformat() if found.last_pushed_at else 'never'}")
    if backlog.last_error:
        print(f"last error: {backlog.last_error} ({backlog.last_error_at})")


async def _push(container: Container) -> int:
    store, clock, views = container.store(), container.clock(), container.views()
    queued = await store.transaction(lambda tx: tx.mirror.changed_all(clock.now()))
    worker = container.mirror_worker()
    stalled_since = time.monotonic()
    with tqdm(total=queued, unit="record", dynamic_ncols=True) as bar:
        while (found := await views.mirror_status()).backlog.waiting:
            bar.n = max(0, queued - found.backlog.waiting)
            bar.refresh()
            if await worker.run_once():
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > STALL_SECONDS:
                break
            else:
                await asyncio.sleep(1.0)
        bar.n = max(0, queued - found.backlog.waiting)
    if found.backlog.waiting:
        print(f"{found.backlog.waiting} copies still wait (another process may be pushing them; a running "
              f"`weft serve` or `weft worker` keeps trying).", file=sys.stderr)
        print_status(found)
        return 1
    print(f"pushed {queued} records to the base")
    return 0


def _configured(container: Container) -> bool:
    if container.settings().airtable_configured:
        return True
    print("weft: Airtable is not configured: set AIRTABLE_API_KEY and AIRTABLE_BASE_ID", file=sys.stderr)
    return False


async def _closing(container: Container, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await close_clients(container)
