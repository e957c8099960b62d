"""Bird's channel message list, read by the automation sync."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from weft.adapters.bird.sender import DEFAULT_BIRD_API_URL
from weft.adapters.bird.webhooks import channel_message
from weft.adapters.json_bodies import response_object, retry_after
from weft.application.pacing import RateLimit
from weft.application.ports import HistoryPage
from weft.domain.errors import MalformedWebhook, ProviderUnavailable
from weft.domain.messages import InboundSms, ProviderSentSms

log = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Bird's largest page."""
READS_PER_SECOND = 40.0
"""Bird allows 50 GET requests a second per workspace; the rest is left to anything else reading it."""


class BirdMessageHistory:
    """`GET /workspaces/{workspace}/channels/{channel}/messages`, newest or oldest first (Bird does not say which:
    the sync takes the newest time it saw as its cursor, whatever the order), from `startAt`, a page at a time."""

    def __init__(self, client: httpx.AsyncClient, api_key: str, workspace_id: str, channel_id: str,
                 api_url: str = DEFAULT_BIRD_API_URL, default_region: str = "US",
                 limit: RateLimit | None = None) -> None:
        self._client, self._region = client, default_region
        self._url = (f"{api_url.rstrip('/')}/workspaces/{quote(workspace_id, safe='')}"
                     f"/channels/{quote(channel_id, safe='')}/messages")
        self._headers = {"Authorization": f"AccessKey {api_key}", "Accept": "application/json"}
        self._limit = limit or RateLimit(READS_PER_SECOND)

    async def page(self, since: datetime | None, page_token: str | None) -> HistoryPage:
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        if since is not None:
            params["startAt"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if page_token:
            params["pageToken"] = page_token
        await self._limit.acquire()
        try:
            response = await self._client.get(self._url, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"Bird could not be reached: {type(exc).__name__}") from exc
        if response.status_code == 429:
            self._limit.pause(retry_after(response) or 1.0)
        if not response.is_success:
            raise ProviderUnavailable(f"Bird answered HTTP {response.status_code}: {response.text[:200]}")
        body = response_object(response)
        results = body.get("results")
        if not isinstance(results, list):
            raise ProviderUnavailable("Bird's answer holds no list of messages")
        token = body.get("nextPageToken")
        return self._page(results, token if isinstance(token, str) and token else None)

    def _page(self, results: list[Any], next_page: str | None) -> HistoryPage:
        inbound: list[InboundSms] = []
        sent: list[ProviderSentSms] = []
        newest: datetime | None = None
        for item in results:
            if not isinstance(item, dict):
                continue
            try:
                message = channel_message(item, self._region)
            except MalformedWebhook as exc:
                log.warning("skipped a Bird message the sync could not read: %s", exc)
                continue
            if isinstance(message, InboundSms):
                inbound.append(message)
                at = message.received_at
            elif isinstance(message, ProviderSentSms):
                sent.append(message)
                at = message.sent_at
            else:
                continue
            newest = at if newest is None or (at is not None and at > newest) else newest
        return HistoryPage(inbound=inbound, sent=sent, fetched=len(results), newest=newest, next_page=next_page)
