"""/metrics in Prometheus's text format, and the timing of provider webhooks."""

from __future__ import annotations

import asyncio
import time

from dependency_injector.wiring import Provide, inject
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics import Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from weft.adapters.prometheus import Gauges, Metrics
from weft.application.views import Views
from weft.config import Settings
from weft.entrypoints.http.admin import require_admin

SCRAPED_CAMPAIGNS = 3
"""The newest care message runs shown: this month's, and the ones before it that may still be sending."""


@inject
async def scrape_metrics(
    request: Request, views: Views = Provide["views"], metrics: Metrics = Provide["metrics"],
    settings: Settings = Provide["settings"],
) -> Response:
    """The admin token is asked for unless WEFT_METRICS_PUBLIC=true; the gauges are read from the database now."""
    if not settings.metrics_public:
        require_admin(request, settings)
    depth, campaigns, alerts = await asyncio.gather(
        views.queue_depth(), views.campaigns(SCRAPED_CAMPAIGNS), views.active_alerts())
    return Response(metrics.render(Gauges(depth, campaigns, alerts)), media_type=CONTENT_TYPE_LATEST)


class TimeWebhooks:
    """Observes how long each provider webhook took to answer; every other request passes with one dict look-up."""

    def __init__(self, app: ASGIApp, timers: dict[str, Histogram]) -> None:
        self._app, self._timers = app, timers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timer = self._timers.get(scope.get("path", ""))
        if timer is None:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self._app(scope, receive, send)
        finally:
            timer.observe(time.perf_counter() - started)
