"""A loopback Twilio: the Messages resource (form-encoded, HTTP Basic auth), answering as Twilio does."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

from tests.integration.loopback import Canned, LoopbackServer, Recorded

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
OUR_NUMBER = "+14155550100"


class LoopbackTwilio(LoopbackServer):
    """Creates messages (201 with a `sid`), refuses bad credentials (401, code 20003), and refuses numbers set in
    `refusals` with Twilio's error body (e.g. 21610 for a number that texted STOP to Twilio)."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: dict[str, tuple[int, int, str]] = {}

    def default_response(self, request: Recorded) -> Canned:
        path = request.path.partition("?")[0]
        if request.method != "POST" or path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return super().default_response(request)
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return Canned(401, {"code": 20003, "message": "Authenticate", "status": 401})
        form = form_of(request)
        if form["To"] in self.refusals:
            status, code, message = self.refusals[form["To"]]
            return Canned(status, {"code": code, "message": message, "status": status,
                                   "more_info": f"https://www.twilio.com/docs/errors/{code}"})
        sid = f"SM{len(self.requests):032x}"
        return Canned(201, {"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"],
                            "direction": "outbound-api", "error_code": None})

    def sent(self) -> list[dict[str, str]]:
        """The form of every send Twilio accepted."""
        with self._lock:
            return [form_of(r) for r, status in zip(self.requests, self.statuses, strict=False) if status == 201]

    def attempts(self) -> list[dict[str, str]]:
        with self._lock:
            return [form_of(r) for r in self.requests if r.method == "POST"]


def form_of(request: Recorded) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.body.decode(), keep_blank_values=True).items()}
