from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weft.application.pacing import Foreground
from weft.application.unit_of_work import StoreError
from weft.containers import Container
from weft.domain.errors import (
    InvalidCheckout,
    InvalidCursor,
    InvalidPhoneNumber,
    InvalidSignature,
    JourneyBusy,
    MalformedWebhook,
    PaymentProviderError,
    PaymentProviderUnavailable,
    UnknownCampaign,
    UnknownJourney,
)
from weft.entrypoints.http import (
    admin,
    admin_site,
    bird_webhook,
    campaigns,
    checkout,
    membership,
    metrics,
    pages,
    twilio_webhook,
)
from weft.entrypoints.http.admin_auth import admin_area
from weft.entrypoints.runtime import Runtime

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 256 * 1024
API_MAX_BYTES = 16 * 1024
BODY_LIMITS = {path: WEBHOOK_MAX_BYTES
               for path in ("/bird-sms-webhook", "/twilio-sms-webhook", "/twilio-status", "/api/stripe/webhook")}
"""Every other route takes at most API_MAX_BYTES, whatever its method."""


def create_app(container: Container, background: bool = True) -> Starlette:
    """The HTTP app. With `background`, its lifespan also runs the background runtime (the send pipeline,
    journeys, cancellations, campaigns and the monthly scheduler; see weft.entrypoints.runtime), which first picks
    up whatever a crash left pending; otherwise a `weft worker` process runs it."""
    container.wire(modules=[admin, admin_site, campaigns, checkout, membership, metrics, pages])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime(container) if background else None
        if runtime is not None:
            await runtime.start()
        try:
            yield
        finally:
            if runtime is not None:
                await runtime.stop()
            await close_clients(container)

    app = Starlette(
        routes=routes(container),
        lifespan=lifespan,
        middleware=[Middleware(metrics.TimeWebhooks, timers=container.metrics().webhook_timers),
                    Middleware(Edge, foreground=container.foreground(), limits=BODY_LIMITS,
                               default_limit=API_MAX_BYTES)],
        exception_handlers={
            MalformedWebhook: _bad_request,
            InvalidPhoneNumber: _bad_request,
            InvalidCheckout: _invalid_checkout,
            InvalidSignature: _unauthorized,
            UnknownJourney: _not_found,
            UnknownCampaign: _not_found,
            InvalidCursor: _bad_request,
            JourneyBusy: _conflict,
            PaymentProviderUnavailable: _unavailable,
            PaymentProviderError: _provider_refused,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            StoreError: _store_unavailable,
        },
    )
    app.state.replies = container.replies()
    app.state.admin_sessions = container.admin_sessions()
    return app


class Edge:
    """What every request passes first: it is counted (background work lets a burst go first), its path and query
    string may not carry NUL (no column can store it), and its body may not exceed the route's limit: a declared
    Content-Length over it is refused before anything is read, and a body that grows past it while being read
    is cut off with the same 413."""

    def __init__(self, app: ASGIApp, foreground: Foreground, limits: dict[str, int], default_limit: int) -> None:
        self._app, self._foreground = app, foreground
        self._limits, self._default_limit = limits, default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            await _refuse(scope, receive, send, 400, "the path or query string contains a NUL character")
            return
        limit = self._limits.get(scope["path"], self._default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, f"the body is over the {limit} bytes this route accepts")
            return
        self._foreground.enter()
        try:
            await self._app(scope, _limited(receive, limit), send)
        finally:
            self._foreground.leave()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"the body is over the {limit} bytes this route accepts")
        return message

    return receive_within_limit


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str) -> None:
    await JSONResponse({"error": error}, status_code=status)(scope, receive, send)


async def close_clients(container: Container) -> None:
    """Close the HTTP clients and the store; used by the app's lifespan and the CLI."""
    gateway = container.payment_gateway()
    if hasattr(gateway, "aclose"):
        await gateway.aclose()
    await container.http_client().aclose()
    container.store().close()


def routes(container: Container) -> list[BaseRoute]:
    return [*provider_routes(container), *other_routes(), *admin_routes(container)]


def provider_routes(container: Container) -> list[BaseRoute]:
    """The webhook routes of every configured SMS provider (the console, the embedded default, takes either
    provider's posts, for trying things out) and Stripe's. The webhooks come first: Starlette tries routes in
    order, and these are the busiest."""
    settings = container.settings()
    console = settings.sms_provider == "console"
    found: list[BaseRoute] = []
    if settings.bird_configured or console:
        bird = bird_webhook.BirdWebhook(container.handle_inbound_sms(), container.record_delivery_receipts(),
                                        settings)
        found += [Route("/bird-sms-webhook", bird.receive, methods=["POST"]),
                  Route("/bird-sms-webhook", bird.verify, methods=["GET"])]
    if settings.twilio_configured or console:
        twilio = twilio_webhook.TwilioWebhook(container.handle_inbound_sms(), container.record_delivery_receipts(),
                                              container.clock(), settings)
        found += [Route("/twilio-sms-webhook", twilio.receive, methods=["POST"]),
                  Route("/twilio-status", twilio.status, methods=["POST"])]
    stripe = checkout.StripeWebhook(container.receive_payment_event(), settings)
    return [*found, Route("/api/stripe/webhook", stripe.receive, methods=["POST"])]


def other_routes() -> list[BaseRoute]:
    return [
        *pages.page_routes(),
        *membership.membership_routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/stripe/create-checkout-session", checkout.create_checkout_session, methods=["POST"]),
        Route("/api/stripe/session", checkout.checkout_session_status, methods=["GET"]),
        Route("/test-checkout/{session_id}/pay", checkout.pay_test_checkout, methods=["POST"]),
    ]


def admin_routes(container: Container) -> list[BaseRoute]:
    """Everything an organiser may do, in one mount with one authentication middleware (bearer token or session
    cookie; see admin_auth): the admin site, its JSON API, the two admin routes the seed system put under
    /api/bird/ (kept where integrations already call them) and /metrics, which leaves the mount, and the token,
    only with WEFT_METRICS_PUBLIC=true."""
    api = [
        Route("/payments", admin.list_payments, methods=["GET"]),
        Route("/payment-events", admin.list_payment_events, methods=["GET"]),
        Route("/journeys", admin.list_journeys, methods=["GET"]),
        Route("/journeys/{journey_id}/retry", admin.retry_journey, methods=["POST"]),
        Route("/audit", admin.list_audit, methods=["GET"]),
        Route("/subscribers", admin.list_subscribers, methods=["GET"]),
        Route("/subscribers/{phone}", admin.show_subscriber, methods=["GET"]),
        Route("/messages", admin.list_messages, methods=["GET"]),
        Route("/stats", admin.delivery_stats, methods=["GET"]),
        Route("/airtable", admin.airtable_status, methods=["GET"]),
        Route("/campaigns", campaigns.list_campaigns, methods=["GET"]),
        Route("/campaigns/{campaign_id}", campaigns.show_campaign, methods=["GET"]),
    ]
    seed = [
        Route("/sync-automation", admin.sync_bird, methods=["GET", "POST"]),
        Route("/send-monthly-messages", campaigns.send_monthly_messages, methods=["GET", "POST"]),
    ]
    guarded: list[BaseRoute] = [Mount("/admin", routes=admin_site.site_routes()), Mount("/api/admin", routes=api),
                                Mount("/api/bird", routes=seed)]
    public: list[BaseRoute] = []
    if container.settings().metrics_public:
        public.append(Route("/metrics", metrics.scrape_metrics, methods=["GET"]))
    else:
        guarded.append(Route("/metrics", metrics.scrape_for_admin, methods=["GET"]))
    return [*public, admin_area(container.settings(), container.admin_sessions(), guarded)]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _invalid_checkout(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidCheckout)
    return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=404)


async def _conflict(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=409)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("payment provider unavailable on %s: %s", request.url.path, exc)
    return JSONResponse({"error": f"payment provider unavailable, try again: {exc}"}, status_code=503)


async def _provider_refused(request: Request, exc: Exception) -> Response:
    log.warning("payment provider refused on %s: %s", request.url.path, exc)
    return JSONResponse({"error": f"payment provider refused the request: {exc}"}, status_code=502)


async def _unauthorized(request: Request, exc: Exception) -> Response:
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=401)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The database failed (connection, deadlock, commit): nothing was stored, so the sender should try again."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": "the database is unavailable, try again"}, status_code=503)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its body arrived: one line, no traceback; the answer goes nowhere."""
    log.info("client disconnected before sending its body: %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    """JSON for API callers; a person's browser asking for a page that does not exist gets the styled page."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and _wants_html(request):
        return pages.not_found(request, "There is no page at this address.")
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
