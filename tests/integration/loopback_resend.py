"""A loopback server that speaks Resend's POST /emails wire format, idempotency keys included."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from tests.integration.loopback import Canned, LoopbackServer, Recorded

RESEND_FIXTURES = Path(__file__).parent.parent / "fixtures" / "resend"


def resend_fixture(name: str) -> Any:
    return json.loads((RESEND_FIXTURES / name).read_text())


def resend_error(name: str, **headers: str) -> Canned:
    """A canned Resend error response built from a fixture body, with its own status code."""
    body = resend_fixture(name)
    return Canned(body["statusCode"], body, headers)


class LoopbackResend(LoopbackServer):
    """Resend's send endpoint: 200 with a new email id; a repeated Idempotency-Key replays the first answer."""

    def __init__(self) -> None:
        super().__init__()
        self._by_key: dict[str, tuple[bytes, str]] = {}
        self._keys_lock = threading.Lock()

    def default_response(self, request: Recorded) -> Canned:
        if request.method != "POST" or request.path != "/emails":
            return super().default_response(request)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return resend_error("error_missing_api_key_401.json")
        key = request.headers.get("idempotency-key")
        if key is None:
            return Canned(200, {"id": str(uuid.uuid4())})
        return self._idempotent(key, request.body)

    def _idempotent(self, key: str, body: bytes) -> Canned:
        with self._keys_lock:
            first = self._by_key.setdefault(key, (body, str(uuid.uuid4())))
        if first[0] != body:
            return resend_error("error_invalid_idempotent_request_409.json")
        return Canned(200, {"id": first[1]})

    def sent(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/emails"]
