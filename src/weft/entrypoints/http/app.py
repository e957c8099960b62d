from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weft.containers import Container
from weft.domain.errors import InvalidPhoneNumber, InvalidSignature, MalformedWebhook
from weft.entrypoints.http import admin, bird_webhook

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 256 * 1024


def create_app(container: Container) -> Starlette:
    """The HTTP app; the lifespan starts outbox delivery (which first sends whatever a crash left pending)."""
    container.wire(modules=[bird_webhook, admin])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = container.outbox_worker()
        worker.start()
        try:
            yield
        finally:
            await worker.stop()
            await container.http_client().aclose()
            container.store().close()

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            MalformedWebhook: _bad_request,
            InvalidPhoneNumber: _bad_request,
            InvalidSignature: _unauthorized,
            HTTPException: _http_error,
        },
    )


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/bird-sms-webhook", bird_webhook.receive_bird_sms, methods=["POST"], max_body_size=WEBHOOK_MAX_BYTES),
        Route("/bird-sms-webhook", bird_webhook.verify_bird_endpoint, methods=["GET"]),
        Route("/api/admin/subscribers", admin.list_subscribers, methods=["GET"]),
        Route("/api/admin/subscribers/{phone}", admin.show_subscriber, methods=["GET"]),
        Route("/api/admin/messages", admin.list_messages, methods=["GET"]),
    ]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _unauthorized(request: Request, exc: Exception) -> Response:
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=401)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
