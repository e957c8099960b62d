"""The whole member journey on the embedded default: test-mode checkout, console email, Bird loopback SMS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.conftest import RunningApp
from tests.integration.loopback import Canned, LoopbackBird
from tests.integration.test_bird_webhook import PHONE, text_in

CHECKOUT = "/api/stripe/create-checkout-session"
WELCOME = (
    "Welcome to Community Weft! You are now part of our community. We are excited to have you here. "
    "You will receive monthly care messages from our makers. Reply STOP anytime to opt out."
)


def love_token(app: RunningApp, bird: LoopbackBird) -> str:
    text_in(app, "LOVE", "love-1")
    app.wait_for(lambda: len(bird.sent()) == 1)
    link = bird.texts()[0].split("Click here: ")[1]
    return parse_qs(urlsplit(link).query)["t"][0]


def journeys(app: RunningApp) -> list[dict[str, Any]]:
    return list(app.admin("/api/admin/journeys").json()["journeys"])


def wait_for_journey_end(app: RunningApp) -> dict[str, Any]:
    """Until every step of the newest journey has an outcome (done or failed)."""
    app.wait_for(lambda: bool(journeys(app)) and len(journeys(app)[0]["steps"]) == 5, timeout=10)
    return journeys(app)[0]


def test_free_sign_up_from_the_love_link_gets_the_welcome_and_is_audited(app: RunningApp, bird: LoopbackBird) -> None:
    token = love_token(app, bird)
    response = app.client.post(CHECKOUT, json={"tier": "free", "email": "Jane@Example.org", "phone": PHONE,
                                               "token": token})
    assert response.status_code == 200
    redirect = response.json()["redirect"]
    assert redirect.startswith("/success?session_id=free_")
    journey = wait_for_journey_end(app)
    assert journey["completed_at"] is not None
    assert set(journey["steps"]) == {"payment_processed", "database_updated", "email_sent", "sms_sent",
                                     "customer_access_granted"}
    app.wait_for(lambda: len(bird.sent()) == 2)
    assert bird.texts()[1] == WELCOME
    (payment,) = app.admin("/api/admin/payments").json()["payments"]
    assert (payment["tier"], payment["status"], payment["email"], payment["phone_proven"]) == (
        "free", "completed", "jane@example.org", True)
    session = app.client.get("/api/stripe/session", params={"session_id": redirect.split("=")[1]}).json()
    assert session == {"status": "completed", "tier": "free", "amount": 0, "payment_type": None,
                       "email": "j***@example.org", "phone": "+*******0123", "test_mode": True,
                       "outcome": "joined", "title": "Welcome to Community Weft!",
                       "next_steps": "You're in. Look out for a welcome text. Reply STOP at any time to opt out, "
                                     "HELP for help."}
    actions = {e["action"] for e in app.admin("/api/admin/audit").json()["entries"]}
    assert {"signup.free", "journey.payment_processed", "journey.database_updated", "journey.sms_sent",
            "journey.email_sent", "journey.customer_access_granted"} <= actions


def test_paid_monthly_through_the_test_mode_checkout_activates_the_member(app: RunningApp, bird: LoopbackBird) -> None:
    token = love_token(app, bird)
    response = app.client.post(CHECKOUT, json={"tier": "25", "payment_type": "monthly", "email": "sam@example.org",
                                               "phone": PHONE, "token": token})
    url = response.json()["url"]
    assert url.startswith("/test-checkout/cs_test_local_")
    page = app.client.get(url)
    assert "Test mode" in page.text or "TEST MODE" in page.text.upper()
    paid = app.client.post(f"{url}/pay", follow_redirects=False)
    assert paid.status_code == 303
    session_id = parse_qs(urlsplit(paid.headers["location"]).query)["session_id"][0]
    journey = wait_for_journey_end(app)
    assert journey["completed_at"] is not None
    status = app.client.get("/api/stripe/session", params={"session_id": session_id}).json()
    assert (status["status"], status["tier"], status["amount"], status["payment_type"]) == (
        "active", "25", 25, "monthly")
    member = app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["membership"], member["paid_tier"], member["consent"]) == ("paid", "25", "subscribed")


def test_a_double_click_opens_one_checkout_and_records_one_payment(app: RunningApp) -> None:
    form = {"tier": "10", "payment_type": "one_time", "email": "sam@example.org", "phone": PHONE}
    first = app.client.post(CHECKOUT, json=form).json()["url"]
    second = app.client.post(CHECKOUT, json=form).json()["url"]
    assert first == second
    assert len(app.admin("/api/admin/payments").json()["payments"]) == 1


def test_an_unproven_phone_gets_only_the_confirmation_request_until_it_replies_yes(
    app: RunningApp, bird: LoopbackBird
) -> None:
    response = app.client.post(CHECKOUT, json={"tier": "free", "email": "kim@example.org", "phone": "+12125550143"})
    assert response.status_code == 200
    wait_for_journey_end(app)
    app.wait_for(lambda: len(bird.sent()) == 1)
    assert bird.texts() == ["Reply YES to confirm your Community Weft membership"]
    assert app.admin("/api/admin/subscribers/+12125550143").json()["consent"] == "pending"
    text_in(app, "yes", "yes-1", phone="+12125550143")
    app.wait_for(lambda: len(bird.sent()) == 2)
    assert bird.texts()[1] == WELCOME
    assert app.admin("/api/admin/subscribers/+12125550143").json()["consent"] == "subscribed"


@pytest.mark.parametrize(("form", "field"), [
    ({"tier": "7", "email": "a@example.org", "phone": PHONE}, "tier"),
    ({"tier": "free", "email": "not-an-email", "phone": PHONE}, "email"),
    ({"tier": "free", "email": "a@example.org", "phone": "12"}, "phone"),
    ({"tier": "custom", "amount": 1001, "payment_type": "one_time", "email": "a@example.org", "phone": PHONE},
     "amount"),
    ({"tier": "custom", "amount": 0, "payment_type": "one_time", "email": "a@example.org", "phone": PHONE}, "amount"),
    ({"tier": "10", "payment_type": "weekly", "email": "a@example.org", "phone": PHONE}, "payment_type"),
    ([1, 2], "body"),
])
def test_bad_checkout_input_gets_a_400_naming_the_field_and_records_nothing(
    app: RunningApp, form: Any, field: str
) -> None:
    response = app.client.post(CHECKOUT, json=form)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert app.admin("/api/admin/payments").json()["payments"] == []
    assert app.admin("/api/admin/subscribers").json()["subscribers"] == []


def test_an_sms_outage_during_the_journey_sends_the_email_note_and_a_retry_completes_it(
    app: RunningApp, bird: LoopbackBird
) -> None:
    token = love_token(app, bird)
    bird.answer_next(*[Canned(503, {"error": "down"})] * 3)
    app.client.post(CHECKOUT, json={"tier": "free", "email": "jo@example.org", "phone": PHONE, "token": token})
    journey = wait_for_journey_end(app)
    assert "503" in journey["failed_steps"]["sms_sent"]
    assert journey["steps"]["email_sent"]["ok"] is True
    assert "SMS-failed note" in journey["steps"]["email_sent"]["detail"]
    assert journey["steps"]["customer_access_granted"]["ok"] is True
    assert [j["id"] for j in app.admin("/api/admin/journeys?failed=1").json()["journeys"]] == [journey["id"]]
    retried = app.client.post(f"/api/admin/journeys/{journey['id']}/retry",
                              headers={"Authorization": "Bearer admin-secret-token"})
    assert retried.json()["retrying"] == ["sms_sent"]
    app.wait_for(lambda: journeys(app)[0]["completed_at"] is not None)
    assert bird.texts()[-1] == WELCOME
    assert app.admin("/api/admin/journeys?failed=1").json()["journeys"] == []


def test_the_unknown_success_session_is_a_404(app: RunningApp) -> None:
    assert app.client.get("/api/stripe/session", params={"session_id": "cs_nope"}).status_code == 404


def test_paying_an_unknown_test_checkout_is_a_404(app: RunningApp) -> None:
    assert app.client.post("/test-checkout/cs_test_local_nope/pay", follow_redirects=False).status_code == 404


def test_the_pages_that_start_or_follow_a_payment_are_never_cached(app: RunningApp, bird: LoopbackBird) -> None:
    token = love_token(app, bird)
    response = app.client.post(CHECKOUT, json={"tier": "10", "payment_type": "one_time", "email": "sam@example.org",
                                               "phone": PHONE, "token": token})
    for path in ("/", "/success?session_id=cs_x", response.json()["url"]):
        page = app.client.get(path)
        assert (page.status_code, page.headers["cache-control"]) == (200, "no-store"), path


def test_a_browser_asking_for_a_missing_page_gets_the_styled_page_and_api_callers_keep_json(app: RunningApp) -> None:
    html = {"accept": "text/html,application/xhtml+xml"}
    page = app.client.get("/no-such-page", headers=html)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text and "/static/weft.css" in page.text
    assert app.client.get("/no-such-page").json() == {"error": "Not Found"}
    assert app.client.get("/api/no-such-thing", headers=html).json() == {"error": "Not Found"}


def test_there_is_a_favicon_where_browsers_look_for_it(app: RunningApp) -> None:
    assert '<link rel="icon" href="/static/favicon.svg"' in app.client.get("/").text
    icon = app.client.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
