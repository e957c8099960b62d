"""The pages a MEMBERSHIP link leads to: the provider's customer portal, or a page saying why not; in test mode, the
portal's stand-in."""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.application.membership_portal import OpenMembershipPortal, PortalOutcome
from weft.application.replies import Replies
from weft.config import Settings
from weft.domain.errors import PaymentProviderError, PaymentProviderUnavailable
from weft.entrypoints.http.pages import no_store, not_found, templates

log = logging.getLogger(__name__)


def membership_routes() -> list[BaseRoute]:
    return [
        Route("/membership", open_portal, methods=["GET"], name="membership"),
        Route("/test-portal/{portal_id}", test_portal, methods=["GET"], name="test_portal"),
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
    """Test mode only: what the member would see at Stripe's customer portal, said plainly."""
    if not isinstance(gateway, TestModePaymentGateway):
        return not_found(request, "There is no test portal: a Stripe key is configured.")
    try:
        portal = await gateway.portal(request.path_params["portal_id"])
    except PaymentProviderError:
        return not_found(request, "We could not find that page. Text MEMBERSHIP to us for a new link.")
    return no_store(templates().TemplateResponse(request, "test_portal.html", {
        "program": replies.program_name, "message": replies.plain(replies.test_portal),
        "return_url": portal.return_url}))
