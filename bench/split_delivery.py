"""Prototype, for measurement only: `weft serve` without outbox delivery, and the delivery alone in a second process.

Usage: split_delivery.py web --host H --port P   (the app as `weft serve` runs it, minus the outbox worker)
       split_delivery.py deliver [--poll 0.02] [--batch 250]   (the outbox worker alone, polling)

It shows what moving the relay off the GIL-bound web process onto the second core would give; `weft serve`
itself would need a CLI switch for it. Both processes take their settings from the environment.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from dependency_injector import providers

from weft.bootstrap import bootstrap, configure_logging
from weft.entrypoints.http.app import create_app


class _NoDelivery:
    """Stands in for the web process's outbox worker: the other process delivers."""

    def wake(self) -> None:
        pass

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def serve_web(host: str, port: int) -> None:
    container = bootstrap()
    container.outbox_worker.override(providers.Object(_NoDelivery()))
    uvicorn.run(create_app(container), host=host, port=port, log_config=None)


async def deliver_forever(poll: float, batch: int) -> None:
    container = bootstrap(run_migrations=False)
    container.worker_poll_seconds.override(providers.Object(poll))
    # Big claims: each claim and each record must win the write lock from the busy web process.
    container.deliver_outbox.add_kwargs(batch=batch)
    container.outbox_worker().start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["web", "deliver"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between delivery polls")
    parser.add_argument("--batch", type=int, default=250, help="most messages claimed per transaction")
    args = parser.parse_args()
    configure_logging()
    if args.role == "web":
        serve_web(args.host, args.port)
    else:
        asyncio.run(deliver_forever(args.poll, args.batch))


if __name__ == "__main__":
    main()
