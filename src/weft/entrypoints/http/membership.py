"""The pages a MEMBERSHIP link leads to: the provider's customer portal, or a page saying why not; in test mode, the
portal's stand-in."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.application.membership_portal import OpenMembershipPortal, PortalOutcome
from weft.application.replies import Replies
from weft.config import Settings
from weft.domain.errors import PaymentProviderError
from weft.entrypoints.http.pages import no_store, not_found, templates


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
    visit = await open_membership(params.get("phone", ""), params.get("t", ""))
    if visit.outcome is PortalOutcome.OPENED and visit.url:
        return no_store(RedirectResponse(visit.url, status_code=303))
    join_word = settings.join_words[0]
    text = replies.membership_link_expired if visit.outcome is PortalOutcome.EXPIRED else replies.membership_none
    return no_store(templates().TemplateResponse(request, "membership.html", {
        "program": replies.program_name, "message": replies.plain(text, join_word)}))


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
