"""A loopback Bird Channels API: accepts every send with 202 and counts what it received."""

from __future__ import annotations

import argparse
import json
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Received:
    """Tally of channel messages: every request, and the distinct outbox references among them."""

    def __init__(self) -> None:
        self.requests = 0
        self.references: set[str] = set()
        self.recipients: set[str] = set()

    async def send_message(self, request: Request) -> Response:
        message = json.loads(await request.body())
        self.requests += 1
        self.references.add(str(message.get("reference")))
        self.recipients.add(str(message["receiver"]["contacts"][0]["identifierValue"]))
        return JSONResponse({"id": uuid.uuid4().hex, "status": "accepted"}, status_code=202)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {"requests": self.requests, "references": len(self.references), "recipients": len(self.recipients)}
        )


def create_provider_app(received: Received) -> Starlette:
    return Starlette(routes=[
        Route("/workspaces/{workspace}/channels/{channel}/messages", received.send_message, methods=["POST"]),
        Route("/stats", received.stats, methods=["GET"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description="loopback Bird Channels API for bench/inbound_webhook.py")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # No access log: the provider shares the CPUs with the server under test and should cost as little as it can.
    uvicorn.run(create_provider_app(Received()), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
