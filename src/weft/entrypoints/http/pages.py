from __future__ import annotations

import functools
from pathlib import Path

import attrs
from dependency_injector.wiring import Provide, inject
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from weft.adapters.test_mode_payments import TestModePaymentGateway, TestSession
from weft.application.replies import Replies
from weft.config import Settings
from weft.domain.errors import PaymentProviderError
from weft.domain.membership import dollars
from weft.domain.tiers import FIXED_TIERS, AmountBounds, bounds_message

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


@attrs.frozen
class TierOption:
    value: str
    label: str


TIERS = (
    TierOption("free", "Free"),
    *(TierOption(name, f"${dollars}") for name, dollars in FIXED_TIERS.items()),
    TierOption("custom", "Custom"),
)


def page_routes() -> list[BaseRoute]:
    """The member-facing pages and their static files."""
    return [
        Route("/", landing, methods=["GET"], name="landing"),
        Route("/success", success, methods=["GET"], name="success"),
        Route("/test-checkout/{session_id}", test_checkout, methods=["GET"], name="test_checkout"),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]


@functools.cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_program])


def _program(request: Request) -> dict[str, str]:
    """Every page names the program as configured (create_app keeps the texts on the app's state)."""
    replies: Replies = request.app.state.replies
    return {"program": replies.program_name}


@inject
async def landing(request: Request, settings: Settings = Provide["settings"],
                  replies: Replies = Provide["replies"]) -> Response:
    low, high = settings.checkout_min_dollars, settings.checkout_max_dollars
    return no_store(templates().TemplateResponse(request, "landing.html", {
        "tiers": TIERS,
        "min_amount": low,
        "max_amount": high,
        "bounds_message": bounds_message(AmountBounds(low, high)),
        "test_mode": settings.test_mode_checkout,
        "intro": replies.text("page_intro"),
        "what_you_get": replies.text("page_what_you_get"),
        "disclosure": replies.text("page_disclosure"),
        "terms_url": settings.terms_url,
        "privacy_url": settings.privacy_url,
    }))


async def success(request: Request) -> Response:
    return no_store(templates().TemplateResponse(request, "success.html", {}))


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page links to."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


def no_store(response: Response) -> Response:
    """Pages that start or follow a payment: Back after paying must fetch them again, never show a stale Pay
    button from the browser's cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


@inject
async def test_checkout(
    request: Request,
    settings: Settings = Provide["settings"],
    gateway: object = Provide["payment_gateway"],
) -> Response:
    session = await _test_session(settings, gateway, request.path_params["session_id"])
    if session is None:
        return not_found(request, "We could not find that test checkout. Start again from the sign-up page.")
    return no_store(templates().TemplateResponse(request, "test_checkout.html", {
        "session_id": request.path_params["session_id"],
        "product_name": session.request.product_name,
        "amount": dollars(session.request.amount_cents),
        "monthly": session.request.monthly,
        "status": session.state.status,
        "cancel_url": session.request.cancel_url,
    }))


async def _test_session(settings: Settings, gateway: object, session_id: str) -> TestSession | None:
    if not settings.test_mode_checkout or not isinstance(gateway, TestModePaymentGateway):
        return None
    try:
        return await gateway.session(session_id)
    except PaymentProviderError:
        return None


def not_found(request: Request, message: str) -> Response:
    return templates().TemplateResponse(request, "not_found.html", {"message": message}, status_code=404)
