"""Loopback HTTP servers that speak a vendor's wire format, for the real adapters to talk to."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import attrs


@attrs.frozen
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = attrs.field(factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.frozen
class Canned:
    status: int
    body: Any
    headers: dict[str, str] = attrs.field(factory=dict)


class LoopbackServer:
    """Records every request; answers from a queue of canned responses, then from `default_response`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.statuses: list[int] = []
        self.queue: deque[Canned] = deque()
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.05), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_next(self, *responses: Canned) -> None:
        self.queue.extend(responses)

    def default_response(self, request: Recorded) -> Canned:
        return Canned(404, {"error": f"no route for {request.method} {request.path}"})

    def _respond(self, request: Recorded) -> Canned:
        with self._lock:
            self.requests.append(request)
            self.statuses.append(0)
            index = len(self.requests) - 1
            canned = self.queue.popleft() if self.queue else None
        canned = canned or self.default_response(request)
        with self._lock:
            self.statuses[index] = canned.status
        return canned

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                   self.rfile.read(length))
                canned = server._respond(request)
                payload = canned.body if isinstance(canned.body, bytes) else json.dumps(canned.body).encode()
                self.send_response(canned.status)
                for name, value in {"content-type": "application/json", **canned.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class LoopbackBird(LoopbackServer):
    """Bird's Channels and Conversations send endpoints (202/201 with a channel message object), and the channel's
    message list filtered by `reference`, as Weft asks it about a send a crash left in doubt."""

    down = False
    """While set, every request gets a 503, as during an outage."""
    history: list[dict[str, Any]] = []
    """The channel's messages (channel message objects) its message list pages through, oldest first."""
    page_size = 2

    def default_response(self, request: Recorded) -> Canned:
        path, _, query = request.path.partition("?")
        if self.down:
            return Canned(503, {"error": "service unavailable"})
        if request.method == "POST" and path.endswith("/messages"):
            number = len(self.requests)
            status = 201 if "/conversations/" in path else 202
            return Canned(status, {"id": f"bird-msg-{number}", "status": "accepted", "direction": "outgoing"})
        if request.method == "GET" and path.endswith("/messages") and "reference" not in dict(parse_qsl(query)):
            return self._history_page(dict(parse_qsl(query)))
        if request.method == "GET" and path.endswith("/messages"):
            reference = dict(parse_qsl(query)).get("reference")
            found = [{"id": f"bird-found-{i}", "reference": reference, "status": "accepted"}
                     for i, r in enumerate(self.accepted()) if r.json().get("reference") == reference]
            return Canned(200, {"results": found, "nextPageToken": None})
        return super().default_response(request)

    def _history_page(self, query: dict[str, str]) -> Canned:
        """Messages created at or after `startAt`, `page_size` at a time, with `nextPageToken` while more remain."""
        start = query.get("startAt", "")
        matching = [m for m in self.history if m["createdAt"] >= start]
        offset = int(query.get("pageToken") or 0)
        page = matching[offset:offset + self.page_size]
        more = offset + self.page_size < len(matching)
        return Canned(200, {"results": page, "nextPageToken": str(offset + self.page_size) if more else None})

    def history_reads(self) -> list[dict[str, str]]:
        """The query of every read of the message list (not the look-ups by reference)."""
        reads = [dict(parse_qsl(r.path.partition("?")[2])) for r in self.requests if r.method == "GET"]
        return [q for q in reads if "reference" not in q]

    def sent(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def accepted(self) -> list[Recorded]:
        """Sends Bird took (it answered 2xx)."""
        with self._lock:
            return [r for r, status in zip(self.requests, self.statuses, strict=False)
                    if r.method == "POST" and 200 <= status < 300]

    def texts(self) -> list[str]:
        return [r.json()["body"]["text"]["text"] for r in self.sent()]

    def recipients(self) -> list[str]:
        """The number of every accepted send, once per send."""
        return [r.json()["receiver"]["contacts"][0]["identifierValue"] for r in self.accepted()]
