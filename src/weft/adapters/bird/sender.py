from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import httpx

from weft.adapters.json_bodies import response_object, retry_after
from weft.domain.messages import Lookup, LookupResult, OutboundSms, SendResult

log = logging.getLogger(__name__)

DEFAULT_BIRD_API_URL = "https://api.bird.com"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def bird_route(channel_id: str | None, conversation_id: str | None) -> str | None:
    """The reply route of a text Bird delivered: the channel it came in on and its conversation, when known."""
    parts = {k: v for k, v in (("channel", channel_id), ("conversation", conversation_id)) if v}
    return urlencode(parts) if parts else None


def _route(message: OutboundSms) -> tuple[str | None, str | None]:
    """(channel id, conversation id) from the message's reply route; a route of another provider is ignored."""
    if not message.reply_route:
        return None, None
    parts = parse_qs(message.reply_route)
    return parts.get("channel", [None])[0], parts.get("conversation", [None])[0]


class BirdSmsSender:
    """Bird Channels API sender; replies into the Bird conversation when the message has one."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        workspace_id: str,
        channel_id: str,
        api_url: str = DEFAULT_BIRD_API_URL,
        access_key_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        # Sends go straight to the client's transport when given it: the client's redirect, auth and cookie layers
        # cost about a third of the CPU of each send, which caps a monthly run.
        self._transport = transport
        self._extensions = {"timeout": timeout.as_dict()}
        self._headers = {"Authorization": f"AccessKey {api_key}", "Accept": "application/json"}
        self._send_headers = {**self._headers, "Content-Type": "application/json"}
        self._base = f"{api_url.rstrip('/')}/workspaces/{workspace_id}"
        self._channel_id = channel_id
        self._access_key_id = access_key_id

    async def send(self, message: OutboundSms) -> SendResult:
        url, body = self._request(message)
        try:
            response = await self._post(url, json.dumps(body).encode())
        except httpx.HTTPError as exc:
            # The request may have reached Bird before the connection failed: ask before sending it again.
            return SendResult(accepted=False, error=f"network error: {type(exc).__name__}", transient=True,
                              maybe_delivered=True)
        return _result(response)

    async def _post(self, url: str, content: bytes) -> httpx.Response:
        if self._transport is None:
            return await self._client.post(url, content=content, headers=self._send_headers)
        request = httpx.Request("POST", url, content=content, headers=self._send_headers, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def lookup(self, message: OutboundSms) -> LookupResult:
        """Ask Bird for a channel message with our id as its `reference`. Whether the list endpoint filters by
        `reference` is not documented: a page holding any other message means the filter was ignored, and the
        answer is UNKNOWN rather than a false "not sent"."""
        if _route(message)[1] and self._access_key_id:
            return LookupResult(Lookup.UNKNOWN, error="conversation replies carry no reference to look up")
        url = f"{self._channel_url(message)}/messages"
        try:
            response = await self._client.get(url, params={"reference": message.id, "limit": 10},
                                              headers=self._headers)
        except httpx.HTTPError as exc:
            return LookupResult(Lookup.UNKNOWN, error=f"network error: {type(exc).__name__}", transient=True)
        if response.status_code == 429 or response.status_code >= 500:
            return LookupResult(Lookup.UNKNOWN, error=f"HTTP {response.status_code}", transient=True)
        if not response.is_success:
            return LookupResult(Lookup.UNKNOWN, error=f"HTTP {response.status_code}: {response.text[:200]}")
        return _found(response_object(response).get("results"), message.id)

    def _channel_url(self, message: OutboundSms) -> str:
        # Ids come from webhook payloads: quoted, so none can steer the request to another API path.
        return f"{self._base}/channels/{quote(_route(message)[0] or self._channel_id, safe='')}"

    def _request(self, message: OutboundSms) -> tuple[str, dict[str, Any]]:
        text = {"type": "text", "text": {"text": message.text}}
        conversation_id = _route(message)[1]
        if conversation_id and self._access_key_id:
            return f"{self._base}/conversations/{quote(conversation_id, safe='')}/messages", {
                "participantType": "accessKey",
                "participantId": self._access_key_id,
                "addMissingParticipants": True,
                "recipients": [{"type": "to", "identifierKey": "phonenumber", "identifierValue": message.to.e164}],
                "body": text,
            }
        return f"{self._channel_url(message)}/messages", {
            "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": message.to.e164}]},
            "body": text,
            # Our outbox id, so a resend after a crash can be matched to the first attempt at Bird.
            "reference": message.id,
        }


def _result(response: httpx.Response) -> SendResult:
    if response.is_success:
        return SendResult(accepted=True, provider_id=response_object(response).get("id"))
    error = f"HTTP {response.status_code}: {response.text[:300]}"
    if response.status_code == 429 or response.status_code >= 500:
        # Bird: a 429 "has not been processed and can be retried".
        return SendResult(accepted=False, error=error, transient=True, retry_after=retry_after(response),
                          throttled=response.status_code == 429)
    return SendResult(accepted=False, error=error)


def _found(results: object, reference: str) -> LookupResult:
    if not isinstance(results, list):
        return LookupResult(Lookup.UNKNOWN, error="Bird's answer holds no list of messages")
    items = [r for r in results if isinstance(r, dict)]
    if any(r.get("reference") != reference for r in items):
        return LookupResult(Lookup.UNKNOWN, error="Bird did not filter its messages by reference")
    if not items:
        return LookupResult(Lookup.NOT_FOUND)
    found = items[0].get("id")
    return LookupResult(Lookup.FOUND, provider_id=found if isinstance(found, str) else None)
