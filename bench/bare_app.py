"""The baseline: a one-route Starlette app served as `weft serve` serves Weft.

Same logging (`configure_logging`: root handler at INFO with the phone mask) and the same uvicorn call
(`log_config=None`, so the access log goes through that handler), hence the same access-log cost per request.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weft.bootstrap import configure_logging


async def ok(request: Request) -> Response:
    await request.body()
    return JSONResponse({"status": "ok"})


def create_bare_app() -> Starlette:
    return Starlette(routes=[Route("/", ok, methods=["GET", "POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description="bare Starlette baseline for bench/inbound_webhook.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure_logging()
    uvicorn.run(create_bare_app(), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
