from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from weft.adapters.bird.webhooks import parse_bird_payload, verify_bird_signature
from weft.application.delivery_receipts import RecordDeliveryReceipts
from weft.application.handle_inbound_sms import HandleInboundSms, InboundOutcome
from weft.config import Settings
from weft.domain.messages import DeliveryReceipt


class BirdWebhook:
    """The Bird webhook routes, with their use case and settings resolved once when the app is built: this is
    the busiest path of the service, and per-request injection costs a tenth of its time."""

    def __init__(self, handle: HandleInboundSms, receipts: RecordDeliveryReceipts, settings: Settings) -> None:
        self._handle, self._receipts, self._settings = handle, receipts, settings

    async def receive(self, request: Request) -> Response:
        """Verify, parse and store one Bird delivery; answers once the text is committed (an opt-out also applied,
        its confirmation queued); the inbound worker applies any other text moments later."""
        settings = self._settings
        body = await request.body()
        if settings.bird_signing_key:
            headers = {k.lower(): v for k, v in request.headers.items()}
            verify_bird_signature(settings.bird_signing_key, headers, body, public_url(request, settings.public_url))
        content_type = request.headers.get("content-type", "")
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if "x-www-form-urlencoded" in content_type else None
        query = dict(request.query_params) if request.scope["query_string"] else {}
        message = parse_bird_payload(body, content_type, query, form, settings.default_region)
        if message is None:
            return _answer("ignored")
        if isinstance(message, DeliveryReceipt):
            # A receipt for a message we do not know (sent by another system on the channel) is ignored.
            return _answer("recorded" if await self._receipts([message]) else "ignored")
        outcome = await self._handle(message)
        return _answer(outcome.value)

    async def verify(self, request: Request) -> Response:
        """Answer a reachability check, echoing `challenge` when the caller sends one."""
        challenge = request.query_params.get("challenge")
        if challenge is not None:
            return PlainTextResponse(challenge)
        if "originator" in request.query_params:
            return await self.receive(request)
        return JSONResponse({"status": "ok"})


_ANSWERS = {status: json.dumps({"status": status}).encode()
            for status in ("ignored", "recorded", *(outcome.value for outcome in InboundOutcome))}


def _answer(status: str) -> Response:
    """The webhook's JSON answer, rendered once per status rather than on every request."""
    return Response(_ANSWERS[status], media_type="application/json")


def public_url(request: Request, configured_base: str) -> str:
    """The URL the provider signed: our configured public base, not whatever host a proxy forwarded."""
    url = configured_base.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url
