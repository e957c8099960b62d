"""Checkout and the Stripe webhook through the real Stripe adapter, against loopback Stripe, Bird and SMTP."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.integration import stripe_events as events
from tests.integration.conftest import STRIPE_WEBHOOK_SECRET, RunningApp, fast_container, start_app
from tests.integration.loopback import Canned, LoopbackBird
from tests.integration.loopback_stripe import LoopbackStripe
from tests.integration.test_bird_webhook import PHONE, text_in
from tests.integration.test_email_adapters import Inbox
from tests.integration.test_membership_flow import WELCOME, journeys, love_token, wait_for_journey_end
from weft.config import Settings

CHECKOUT = "/api/stripe/create-checkout-session"
WEBHOOK = "/api/stripe/webhook"


def deliver(app: RunningApp, event: dict[str, Any], secret: str = STRIPE_WEBHOOK_SECRET) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"stripe-signature": events.sign(body, secret), "content-type": "application/json"}
    return app.client.post(WEBHOOK, content=body, headers=headers)


def applied(app: RunningApp, event_id: str) -> bool:
    events = app.admin("/api/admin/payment-events?all=true").json()["events"]
    return any(e["id"] == event_id and e["status"] == "processed" for e in events)


def deliver_and_apply(app: RunningApp, event: dict[str, Any]) -> None:
    """Stripe delivers the event, Weft acknowledges it at once, and its worker applies it soon after."""
    assert deliver(app, event).json() == {"status": "received"}
    app.wait_for(lambda: applied(app, event["id"]))


def open_checkout(app: RunningApp, stripe: LoopbackStripe, tier: str = "10", payment_type: str = "monthly",
                  token: str | None = None) -> str:
    form = {"tier": tier, "payment_type": payment_type, "email": "ana@example.org", "phone": PHONE, "token": token}
    response = app.client.post(CHECKOUT, json=form)
    assert response.status_code == 200, response.text
    (session_id,) = stripe.sessions
    assert response.json()["url"] == stripe.sessions[session_id]["url"]
    return session_id


def paying_member(app: RunningApp, stripe: LoopbackStripe, bird: LoopbackBird) -> dict[str, Any]:
    """A member who texted LOVE, paid monthly from the link, and whose journey has run; the paid session."""
    token = love_token(app, bird)
    session = stripe.complete_session(open_checkout(app, stripe, token=token), phone=PHONE)
    deliver_and_apply(app, events.checkout_session_completed(session))
    wait_for_journey_end(app)
    return session


def payments(app: RunningApp) -> list[dict[str, Any]]:
    return list(app.admin("/api/admin/payments").json()["payments"])


def test_checkout_opens_a_stripe_session_with_the_agreed_parameters(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    open_checkout(stripe_app, stripe_server)
    (call,) = stripe_server.calls_to("POST", "/v1/checkout/sessions")
    params = call.params
    assert params["mode"] == "subscription"
    assert params["line_items"][0]["price_data"]["recurring"]["interval"] == "month"
    assert params["line_items"][0]["price_data"]["unit_amount"] == "1000"
    assert params["phone_number_collection"]["enabled"] == "false"
    assert params["allow_promotion_codes"] == "true"
    assert params["success_url"] == "https://sms.example.com/success?session_id={CHECKOUT_SESSION_ID}"
    assert params["metadata"] == {"phone": PHONE, "tier": "10", "payment_type": "monthly"}
    assert call.idempotency_key and call.idempotency_key.startswith("checkout-")
    (customer,) = stripe_server.customers.values()
    assert (customer["email"], customer["phone"]) == ("ana@example.org", PHONE)
    assert payments(stripe_app)[0]["status"] == "pending"


def test_a_signed_completion_activates_the_member_and_sends_welcome_sms_and_smtp_email(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird, smtp_inbox: tuple[Inbox, int]
) -> None:
    token = love_token(stripe_app, bird)
    session_id = open_checkout(stripe_app, stripe_server, token=token)
    session = stripe_server.complete_session(session_id, phone=PHONE)
    assert deliver(stripe_app, events.checkout_session_completed(session)).json() == {"status": "received"}
    journey = wait_for_journey_end(stripe_app)
    assert journey["completed_at"] is not None
    (payment,) = payments(stripe_app)
    assert (payment["status"], payment["subscription_id"]) == ("active", session["subscription"])
    stripe_app.wait_for(lambda: len(bird.sent()) == 2)
    assert bird.texts()[1] == WELCOME
    inbox = smtp_inbox[0]
    message = inbox.received()
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "Welcome to Community Weft"
    assert "$10 monthly" in message.get_body(("plain",)).get_content()


def test_a_redelivered_event_is_processed_once(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, smtp_inbox: tuple[Inbox, int]
) -> None:
    session = stripe_server.complete_session(open_checkout(stripe_app, stripe_server), phone=PHONE)
    event = events.checkout_session_completed(session)
    assert deliver(stripe_app, event).json() == {"status": "received"}
    assert deliver(stripe_app, event).json() == {"status": "duplicate"}
    deliver_and_apply(stripe_app, events.async_payment_succeeded(session))
    stripe_app.wait_for(lambda: applied(stripe_app, event["id"]))
    assert deliver(stripe_app, event).json() == {"status": "duplicate"}
    wait_for_journey_end(stripe_app)
    assert len(journeys(stripe_app)) == 1
    assert len(smtp_inbox[0].envelopes) == 1


def test_a_bad_signature_is_rejected_and_changes_nothing(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    session = stripe_server.complete_session(open_checkout(stripe_app, stripe_server), phone=PHONE)
    response = deliver(stripe_app, events.checkout_session_completed(session), secret="whsec_wrong")
    assert response.status_code == 401
    assert payments(stripe_app)[0]["status"] == "pending"
    assert journeys(stripe_app) == []


def test_the_payload_is_not_trusted_the_session_is_re_read(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    session_id = open_checkout(stripe_app, stripe_server)
    forged = {**stripe_server.sessions[session_id], "payment_status": "paid", "status": "complete"}
    deliver_and_apply(stripe_app, events.checkout_session_completed(forged))
    assert payments(stripe_app)[0]["status"] == "processing"
    assert journeys(stripe_app) == []


def test_an_invoice_before_the_completion_is_tolerated_and_renewals_keep_the_member_active(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    session = stripe_server.complete_session(open_checkout(stripe_app, stripe_server), phone=PHONE)
    early = events.invoice_paid(session["subscription"], session["customer"])
    deliver_and_apply(stripe_app, early)
    deliver_and_apply(stripe_app, events.checkout_session_completed(session))
    deliver_and_apply(stripe_app, events.invoice_paid(session["subscription"], session["customer"]))
    assert payments(stripe_app)[0]["status"] == "active"
    actions = [e["action"] for e in stripe_app.admin("/api/admin/audit").json()["entries"]]
    assert "subscription.unmatched" in actions and "subscription.renewed" in actions


def test_a_failed_renewal_tells_the_member_once_and_a_deleted_subscription_returns_them_to_free(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    session = paying_member(stripe_app, stripe_server, bird)
    sub_id, customer = session["subscription"], session["customer"]
    stripe_server.set_subscription_status(sub_id, "past_due")
    deliver(stripe_app, events.invoice_payment_failed(sub_id, customer))
    deliver(stripe_app, events.invoice_payment_failed(sub_id, customer))
    stripe_app.wait_for(lambda: any("did not go through" in t for t in bird.texts()))
    assert sum("did not go through" in t for t in bird.texts()) == 1
    stripe_server.set_subscription_status(sub_id, "canceled")
    deliver_and_apply(stripe_app, events.subscription_deleted(stripe_server.subscriptions[sub_id]))
    member = stripe_app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["membership"], member["paid_tier"]) == ("free", None)
    assert payments(stripe_app)[0]["status"] == "cancelled"


def test_stop_cancels_the_stripe_subscription(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    session = paying_member(stripe_app, stripe_server, bird)
    text_in(stripe_app, "STOP", "stop-1")
    stripe_app.wait_for(lambda: bool(stripe_server.calls_to("DELETE", f"/v1/subscriptions/{session['subscription']}")))
    stripe_app.wait_for(lambda: stripe_server.subscriptions[session["subscription"]]["status"] == "canceled")
    member = stripe_app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["consent"], member["membership"]) == ("opted_out", "free")
    stripe_app.wait_for(lambda: "subscription.cancelled" in [
        e["action"] for e in stripe_app.admin("/api/admin/audit").json()["entries"]])


def pending_events(app: RunningApp) -> list[dict[str, Any]]:
    return list(app.admin("/api/admin/payment-events").json()["events"])


def test_stripe_down_during_the_re_read_leaves_the_event_pending_with_its_error_until_stripe_is_back(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    session = stripe_server.complete_session(open_checkout(stripe_app, stripe_server), phone=PHONE)
    for _ in range(6):  # stripe-python tries each read three times
        stripe_server.fail_next(500)
    event = events.checkout_session_completed(session)
    assert deliver(stripe_app, event).json() == {"status": "received"}
    stripe_app.wait_for(lambda: any(e["last_error"] for e in pending_events(stripe_app)), timeout=10)
    (shown,) = pending_events(stripe_app)
    assert (shown["id"], shown["type"], shown["object_id"]) == (event["id"], event["type"], session["id"])
    assert shown["attempts"] >= 1 and "HTTP 500" in shown["last_error"]
    assert payments(stripe_app)[0]["status"] == "pending"
    stripe_app.wait_for(lambda: applied(stripe_app, event["id"]), timeout=15)
    assert payments(stripe_app)[0]["status"] == "active"
    assert pending_events(stripe_app) == []


def test_a_429_from_stripe_pauses_the_event_without_counting_an_attempt(
    stripe_app: RunningApp, stripe_server: LoopbackStripe
) -> None:
    session = stripe_server.complete_session(open_checkout(stripe_app, stripe_server), phone=PHONE)
    stripe_server.answer_next(Canned(429, {"error": {"type": "invalid_request_error", "code": "rate_limit",
                                                     "message": "Too many requests"}}, {"Retry-After": "1"}))
    event = events.checkout_session_completed(session)
    deliver_and_apply(stripe_app, event)
    (shown,) = [e for e in stripe_app.admin("/api/admin/payment-events?all=true").json()["events"]
                if e["id"] == event["id"]]
    assert (shown["attempts"], shown["last_error"]) == (1, None)
    reads = [r for r in stripe_server.requests if r.method == "GET" and r.path.startswith(
        f"/v1/checkout/sessions/{session['id']}")]
    assert len(reads) == 2  # the throttled read and the one a second later, no retry in between
    assert reads[1].at - reads[0].at >= 0.9


def test_an_event_stored_by_a_process_that_stopped_is_applied_by_the_next_one(
    stripe_server: LoopbackStripe, stripe_settings: Settings
) -> None:
    web_only = start_app(fast_container(stripe_settings), background=False)
    try:
        session = stripe_server.complete_session(open_checkout(web_only, stripe_server), phone=PHONE)
        event = events.checkout_session_completed(session)
        assert deliver(web_only, event).json() == {"status": "received"}
        assert [e["id"] for e in pending_events(web_only)] == [event["id"]]
    finally:
        web_only.stop()
    worker = start_app(fast_container(stripe_settings))
    try:
        worker.wait_for(lambda: applied(worker, event["id"]))
        assert payments(worker)[0]["status"] == "active"
    finally:
        worker.stop()


def test_the_payment_events_view_needs_the_admin_token(stripe_app: RunningApp) -> None:
    assert stripe_app.client.get("/api/admin/payment-events").status_code == 401


def test_an_ignored_event_type_gets_a_200(stripe_app: RunningApp) -> None:
    response = deliver(stripe_app, events.event("charge.refunded", {"id": "ch_1", "object": "charge"}))
    assert response.json() == {"status": "ignored"}
