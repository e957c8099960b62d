"""/metrics in Prometheus's text format, and the timing of provider webhooks."""

from __future__ import annotations

import asyncio
import time

from dependency_injector.wiring import Provide, inject
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics import Histogram
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from weft.adapters.prometheus import Gauges, Metrics
from weft.application.views import Views

SCRAPED_CAMPAIGNS = 3
"""The newest care message runs shown: this month's, and the ones before it that may still be sending."""


@inject
async def scrape_metrics(
    request: Request, views: Views = Provide["views"], metrics: Metrics = Provide["metrics"],
) -> Response:
    """The gauges are read from the database now; create_app puts this behind the admin sign-in (bearer token or
    session) unless WEFT_METRICS_PUBLIC=true."""
    depth, campaigns, alerts = await asyncio.gather(
        views.queue_depth(), views.campaigns(limit=SCRAPED_CAMPAIGNS), views.active_alerts())
    return Response(metrics.render(Gauges(depth, campaigns.items, alerts)), media_type=CONTENT_TYPE_LATEST)


scrape_for_admin = requires("admin", status_code=401)(scrape_metrics)


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
