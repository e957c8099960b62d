from __future__ import annotations

from urllib.parse import parse_qsl

from dependency_injector.wiring import Provide, inject
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from weft.adapters.bird_webhooks import parse_bird_payload, verify_bird_signature
from weft.application.handle_inbound_sms import HandleInboundSms
from weft.config import Settings


@inject
async def receive_bird_sms(
    request: Request,
    handle: HandleInboundSms = Provide["handle_inbound_sms"],
    settings: Settings = Provide["settings"],
) -> Response:
    """Verify, parse and record one Bird delivery; answers once the message and its reply are committed."""
    body = await request.body()
    if settings.bird_signing_key:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verify_bird_signature(settings.bird_signing_key, headers, body, public_url(request, settings.public_url))
    content_type = request.headers.get("content-type", "")
    form = dict(parse_qsl(body.decode("utf-8", "replace"))) if "x-www-form-urlencoded" in content_type else None
    message = parse_bird_payload(body, content_type, dict(request.query_params), form, settings.default_region)
    if message is None:
        return JSONResponse({"status": "ignored"})
    outcome = await handle(message)
    return JSONResponse({"status": outcome.value})


async def verify_bird_endpoint(request: Request) -> Response:
    """Answer a reachability check, echoing `challenge` when the caller sends one."""
    challenge = request.query_params.get("challenge")
    if challenge is not None:
        return PlainTextResponse(challenge)
    if "originator" in request.query_params:
        return await receive_bird_sms(request)
    return JSONResponse({"status": "ok"})


def public_url(request: Request, configured_base: str) -> str:
    """The URL the provider signed: our configured public base, not whatever host a proxy forwarded."""
    url = configured_base.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url
