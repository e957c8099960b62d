"""The pages a MEMBERSHIP link leads to: the provider's customer portal, or a page saying why not; in test mode, the
portal's stand-in."""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from weft.adapters.test_mode_payments import TestModePaymentGateway, TestPortal
from weft.application.handle_payment_event import HandlePaymentEvent
from weft.application.membership_portal import OpenMembershipPortal, PortalOutcome
from weft.application.ports import PaymentEvent
from weft.application.replies import Replies
from weft.config import Settings
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable
from weft.entrypoints.http.pages import no_store, not_found, templates

log = logging.getLogger(__name__)


def membership_routes() -> list[BaseRoute]:
    return [
        Route("/membership", open_portal, methods=["GET"], name="membership"),
        Route("/test-portal/{portal_id}", test_portal, methods=["GET"], name="test_portal"),
        Route("/test-portal/{portal_id}/cancel", cancel_test_plan, methods=["POST"]),
    ]


@inject
async def open_portal(request: Request, open_membership: OpenMembershipPortal = Provide["open_membership_portal"],
                      replies: Replies = Provide["replies"], settings: Settings = Provide["settings"]) -> Response:
    """A valid link for a number with a plan goes on to the portal; any other gets a page saying what to do."""
    params = request.query_params
    try:
        visit = await open_membership(params.get("phone", ""), params.get("t", ""))
    except (PaymentProviderError, PaymentProviderUnavailable) as exc:  # either way the member can only try later
        log.warning("the customer portal could not be opened: %s", exc)
        return _page(request, replies, replies.membership_unavailable, settings, status_code=503)
    if visit.outcome is PortalOutcome.OPENED and visit.url:
        return no_store(RedirectResponse(visit.url, status_code=303))
    text = replies.membership_link_expired if visit.outcome is PortalOutcome.EXPIRED else replies.membership_none
    return _page(request, replies, text, settings)


def _page(request: Request, replies: Replies, text: str, settings: Settings, status_code: int = 200) -> Response:
    return no_store(templates().TemplateResponse(request, "membership.html", {
        "program": replies.program_name, "message": replies.plain(text, settings.join_words[0])},
        status_code=status_code))


@inject
async def test_portal(request: Request, gateway: object = Provide["payment_gateway"],
                      replies: Replies = Provide["replies"]) -> Response:
    """Test mode only: what the member would see at Stripe's customer portal, said plainly, with a way to cancel."""
    found = await _portal(request, gateway)
    if isinstance(found, Response):
        return found
    test_gateway, portal = found
    plans = await test_gateway.live_subscriptions(portal.customer_id)
    message = replies.test_portal if plans or "cancelled" not in request.query_params else replies.test_portal_cancelled
    return no_store(templates().TemplateResponse(request, "test_portal.html", {
        "program": replies.program_name, "message": replies.plain(message), "portal_id": portal.id,
        "has_plan": bool(plans), "return_url": portal.return_url}))


@inject
async def cancel_test_plan(request: Request, gateway: object = Provide["payment_gateway"],
                           handle: HandlePaymentEvent = Provide["handle_payment_event"]) -> Response:
    """Test mode only: cancel the plan as the member would in Stripe's portal, and apply the event Stripe sends."""
    found = await _portal(request, gateway)
    if isinstance(found, Response):
        return found
    test_gateway, portal = found
    for plan in await test_gateway.live_subscriptions(portal.customer_id):
        await test_gateway.cancel_subscription(plan.id)
        deleted = {"id": plan.id, "object": "subscription"}
        await handle(PaymentEvent(f"evt_test_portal_{plan.id}", "customer.subscription.deleted", deleted))
    return RedirectResponse(f"/test-portal/{portal.id}?cancelled=1", status_code=303)


async def _portal(request: Request, gateway: object) -> tuple[TestModePaymentGateway, TestPortal] | Response:
    if not isinstance(gateway, TestModePaymentGateway):
        return not_found(request, "There is no test portal: a Stripe key is configured.")
    try:
        return gateway, await gateway.portal(request.path_params["portal_id"])
    except PaymentProviderError:
        return not_found(request, "We could not find that page. Text MEMBERSHIP to us for a new link.")
