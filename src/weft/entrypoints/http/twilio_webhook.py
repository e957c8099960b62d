from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from weft.adapters.twilio.webhooks import (
    Fields,
    form_fields,
    parse_twilio_inbound,
    parse_twilio_status,
    verify_twilio_signature,
)
from weft.application.delivery_receipts import RecordDeliveryReceipts
from weft.application.handle_inbound_sms import HandleInboundSms
from weft.application.ports import Clock
from weft.config import Settings
from weft.domain.errors import InvalidSignature
from weft.entrypoints.http.bird_webhook import public_url

log = logging.getLogger(__name__)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
"""Twilio waits for TwiML; an empty Response sends nothing (our replies go through the outbox)."""


class TwilioWebhook:
    """Twilio's messaging webhook and status callback, signed with the account's auth token (X-Twilio-Signature
    over WEFT_PUBLIC_URL + path and every form parameter): when TWILIO_AUTH_TOKEN is set, a missing or wrong
    signature is refused with 403 and changes nothing."""

    def __init__(self, handle: HandleInboundSms, receipts: RecordDeliveryReceipts, clock: Clock,
                 settings: Settings) -> None:
        self._handle, self._receipts, self._clock, self._settings = handle, receipts, clock, settings

    async def receive(self, request: Request) -> Response:
        """Store one incoming text (an opt-out also applied) and answer empty TwiML once it is durable."""
        fields = form_fields(await request.body())
        if refused := self._refused(request, fields):
            return refused
        await self._handle(parse_twilio_inbound(fields, self._settings.default_region, self._clock.now()))
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status(self, request: Request) -> Response:
        """A status callback for a text we sent: its delivery state moves forward (unknown message ids: ignored)."""
        fields = form_fields(await request.body())
        if refused := self._refused(request, fields):
            return refused
        receipt = parse_twilio_status(fields)
        if receipt is not None:
            await self._receipts([receipt])
        return Response(EMPTY_TWIML, media_type="text/xml")

    def _refused(self, request: Request, fields: Fields) -> Response | None:
        token = self._settings.twilio_auth_token
        if not token:
            return None
        try:
            verify_twilio_signature(token, public_url(request, self._settings.public_url), fields,
                                    request.headers.get("x-twilio-signature"))
        except InvalidSignature as exc:
            log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"error": str(exc)}, status_code=403)
        return None
