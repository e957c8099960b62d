from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence

from weft.application.phone_numbers import normalise_phone
from weft.bootstrap import bootstrap, configure_logging
from weft.config import ConfigError
from weft.containers import Container, background_workers
from weft.domain.errors import InvalidPhoneNumber
from weft.domain.messages import InboundSms
from weft.entrypoints.http.app import close_clients


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        container = bootstrap()
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
    serve.set_defaults(run=_serve)
    simulate = commands.add_parser("simulate-sms", help="process a text as if it came from the SMS provider")
    simulate.add_argument("--from", dest="sender", required=True, help="sender phone, e.g. +14155550123")
    simulate.add_argument("text")
    simulate.set_defaults(run=_simulate)
    listing = commands.add_parser("subscribers", help="list subscribers as a table")
    listing.set_defaults(run=_subscribers)
    return parser


def _serve(container: Container, args: argparse.Namespace) -> int:
    import uvicorn

    from weft.entrypoints.http.app import create_app

    # log_config=None: uvicorn logs through our handlers, so its access log is masked too.
    uvicorn.run(create_app(container), host=args.host, port=args.port, log_config=None)
    return 0


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
        outcome = await container.handle_inbound_sms()(message)
        for worker in background_workers(container):
            await worker.drain()
        detail = await container.store().subscriber_detail(message.sender)
    finally:
        await close_clients(container)
    print(f"{message.sender.e164} texted {message.text!r}: {outcome.value}")
    if detail is not None:
        subscriber = detail["subscriber"]
        print(f"consent: {subscriber.consent.value}, membership: {subscriber.membership.value}")
        for entry in detail["outbound"]:
            if entry.created_at >= detail["inbound"][-1]["received_at"]:
                print(f"reply ({entry.status.value}): {entry.message.text}")
    return 0


def _subscribers(container: Container, args: argparse.Namespace) -> int:
    subscribers = asyncio.run(container.store().subscribers())
    container.store().close()
    rows = [("PHONE", "CONSENT", "MEMBERSHIP", "LAST MESSAGE", "UPDATED")]
    rows += [
        (s.phone.e164, s.consent.value, s.paid_tier or s.membership.value, (s.last_message or "")[:30],
         s.updated_at.strftime("%Y-%m-%d %H:%M"))
        for s in subscribers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
