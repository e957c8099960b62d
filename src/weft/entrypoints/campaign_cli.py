"""`weft send-monthly` and `weft campaigns`: the monthly care message from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tqdm import tqdm

from weft.application.monthly_care import CarePreview
from weft.application.views import CampaignSummary
from weft.containers import Container
from weft.domain.campaign import CampaignState
from weft.domain.care import CareMonth
from weft.entrypoints.http.app import close_clients
from weft.entrypoints.runtime import Runtime

PROGRESS_SECONDS = 0.5


def add_commands(commands: Any) -> None:
    send = commands.add_parser("send-monthly", help="start or resume this month's care message and watch it send")
    send.add_argument("--dry-run", action="store_true", help="show who would get it and who not, send nothing")
    send.add_argument("--month", help="YYYY-MM (default: this month in WEFT_TIMEZONE)")
    send.set_defaults(run=send_monthly)
    listing = commands.add_parser("campaigns", help="list monthly care message runs as a table")
    listing.set_defaults(run=list_campaigns)


def send_monthly(container: Container, args: argparse.Namespace) -> int:
    try:
        month = CareMonth.parse(args.month) if args.month else None
    except ValueError as exc:
        print(f"weft: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        preview = asyncio.run(_preview(container, month))
        print_preview(preview)
        return 0
    try:
        asyncio.run(_send(container, month))
    except KeyboardInterrupt:
        print("stopped watching: what is queued is sent by `weft serve`, or by the next `weft send-monthly`")
    return 0


def list_campaigns(container: Container, args: argparse.Namespace) -> int:
    summaries = asyncio.run(_campaigns(container))
    rows = [("MONTH", "STATE", "STARTED", "FINISHED", "ELIGIBLE", "SENT", "FAILED", "PENDING", "SKIPPED")]
    rows += [
        (s.campaign.month, s.campaign.state.value, s.campaign.created_at.strftime("%Y-%m-%d %H:%M"),
         s.campaign.finished_at.strftime("%Y-%m-%d %H:%M") if s.campaign.finished_at else "-",
         str(s.eligible), str(s.sent), str(s.failed), str(s.pending), str(sum(s.campaign.skipped.values())))
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def print_preview(preview: CarePreview) -> None:
    print(f"Dry run for {preview.month}: nothing was sent.")
    print(f"eligible now: {preview.eligible}")
    for reason, count in sorted(preview.skipped.items()):
        print(f"skipped, {reason.replace('_', ' ')}: {count}")
    if preview.recipients:
        print("first recipients: " + ", ".join(preview.recipients))


async def _preview(container: Container, month: CareMonth | None) -> CarePreview:
    try:
        return await container.preview_monthly_care()(month)
    finally:
        await close_clients(container)


async def _campaigns(container: Container) -> list[CampaignSummary]:
    try:
        return (await container.views().campaigns()).items
    finally:
        await close_clients(container)


async def _send(container: Container, month: CareMonth | None) -> None:
    runtime = Runtime(container, scheduler=False)
    await runtime.start()
    try:
        summary = await container.start_monthly_care()(month)
        print(f"{summary.campaign.id}: started or resumed; Ctrl-C stops watching (a running `weft serve` "
              f"carries on)")
        await _watch(container, summary)
    finally:
        await runtime.stop()
        await close_clients(container)


async def _watch(container: Container, summary: CampaignSummary) -> None:
    views = container.views()
    with tqdm(total=summary.eligible, unit="msg", dynamic_ncols=True) as bar:
        while True:
            found = await views.campaign(summary.campaign.id)
            summary = found or summary
            bar.total = summary.eligible
            bar.n = summary.sent + summary.failed
            bar.set_postfix(sent=summary.sent, failed=summary.failed, pending=summary.pending,
                            rate=f"{summary.rate_per_second}/s", refresh=False)
            bar.refresh()
            if summary.campaign.state is CampaignState.FINISHED:
                return
            await asyncio.sleep(PROGRESS_SECONDS)
