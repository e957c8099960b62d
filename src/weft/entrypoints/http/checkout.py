from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dependency_injector.wiring import Provide, inject
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from weft.adapters.console_email import mask_email
from weft.adapters.json_bodies import load_object
from weft.adapters.stripe_webhooks import parse_stripe_event
from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.application.handle_payment_event import HandlePaymentEvent
from weft.application.ports import PaymentEvent
from weft.application.receive_payment_event import ReceivePaymentEvent
from weft.application.replies import Replies
from weft.application.sign_up_outcome import SignUpOutcome, sign_up_outcome
from weft.application.start_checkout import CheckoutForm, StartCheckout
from weft.application.views import Views
from weft.config import Settings
from weft.domain.errors import InvalidCheckout, InvalidSignature, MalformedWebhook, PaymentProviderError

FORM_FIELDS = ("tier", "email", "phone", "amount", "payment_type", "token")
MAX_TOKEN_CHARS = 64
"""A link token is about 37 characters (expiry and MAC)."""


@inject
async def create_checkout_session(
    request: Request, start: StartCheckout = Provide["start_checkout"]
) -> JSONResponse:
    """Validate the landing page's choice; answer {url} for a paid checkout or {redirect} for a free sign-up."""
    body = await _json_object(request)
    result = await start(CheckoutForm(**{name: body.get(name) for name in FORM_FIELDS}))
    if result.portal:
        return JSONResponse({"url": result.url, "portal": True})
    return JSONResponse({"url": result.url} if result.url else {"redirect": result.redirect})


_OUTCOME_TEXTS = {
    SignUpOutcome.JOINED: ("page_joined_title", "page_joined"),
    SignUpOutcome.CONFIRM: ("page_confirm_title", "page_confirm"),
    SignUpOutcome.OPTED_OUT: ("page_opted_out_title", "page_opted_out"),
}


@inject
async def checkout_session_status(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"],
    replies: Replies = Provide["replies"],
) -> JSONResponse:
    """What the success page shows, and nothing more: contact details come back masked, and what happens with
    texts follows the number's consent as it stands (welcome, reply YES first, or opted out)."""
    session_id = request.query_params.get("session_id", "")
    payment = await views.payment_for_session(session_id) if session_id else None
    if payment is None:
        raise HTTPException(404, "unknown session_id")
    member = await views.subscriber_detail(payment.phone)
    outcome = sign_up_outcome(member.subscriber if member else None)
    title, next_steps = _OUTCOME_TEXTS[outcome]
    return JSONResponse({
        "status": payment.status.value, "tier": payment.tier, "amount": payment.amount_cents // 100,
        "payment_type": payment.payment_type.value if payment.payment_type else None,
        "email": mask_email(payment.email), "phone": payment.phone.masked, "test_mode": settings.test_mode_checkout,
        "outcome": outcome.value, "title": replies.text(title), "next_steps": replies.text(next_steps),
    })


class StripeWebhook:
    """The Stripe webhook route, its use case and settings resolved once when the app is built (per-request
    injection would be a tenth of its time)."""

    def __init__(self, receive: ReceivePaymentEvent, settings: Settings) -> None:
        self._receive, self._settings = receive, settings

    async def receive(self, request: Request) -> JSONResponse:
        """Verify the signature on the raw body, store the event once and answer 2xx: the payment-events worker
        re-reads and applies it (Stripe: acknowledge first, then process). 5xx only when it could not be stored."""
        secret = self._settings.stripe_webhook_secret
        if not secret:
            raise InvalidSignature("STRIPE_WEBHOOK_SECRET is not configured, so no Stripe event can be verified")
        body = await request.body()
        event = parse_stripe_event(body, request.headers.get("stripe-signature"), secret)
        outcome = await self._receive(event)
        return JSONResponse({"status": outcome.value})


@inject
async def pay_test_checkout(
    request: Request, gateway: Any = Provide["payment_gateway"],
    handle: HandlePaymentEvent = Provide["handle_payment_event"],
) -> Response:
    """Test mode only: complete the session and run the same use case a Stripe webhook would."""
    if not isinstance(gateway, TestModePaymentGateway):
        raise HTTPException(404, "test-mode checkout is off: a Stripe key is configured")
    session_id = request.path_params["session_id"]
    try:
        state = await gateway.pay(session_id)
    except PaymentProviderError:
        raise HTTPException(404, f"no test checkout {session_id}") from None
    completed = {"id": session_id, "object": "checkout.session"}
    await handle(PaymentEvent(f"evt_test_mode_{session_id}", "checkout.session.completed", completed))
    session = await gateway.session(session_id)
    success = urlsplit(session.request.success_url.replace("{CHECKOUT_SESSION_ID}", state.id))
    # Relative, so the test checkout works on whatever host and port the page was opened.
    return RedirectResponse(f"{success.path}?{success.query}", status_code=303)


async def _json_object(request: Request) -> dict[str, Any]:
    """The form as a JSON object, checked at the edge (depth, NUL, half emoji) and the token's length."""
    try:
        body = load_object(await request.body(), "body")
    except MalformedWebhook as exc:
        raise InvalidCheckout("body", f"The request must be a JSON object: {exc}") from None
    token = body.get("token")
    if isinstance(token, str) and len(token) > MAX_TOKEN_CHARS:
        raise InvalidCheckout("token", f"This is not a sign-up link token (it is over {MAX_TOKEN_CHARS} characters). "
                                       f"Open the link from the text again")
    return body
