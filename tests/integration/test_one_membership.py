"""One membership per number, end to end: the tier follows the plan, the welcome goes once, a second monthly plan
from weft.config import Settings
goes to the customer portal, MEMBERSHIP texts a link to it, and LOVE twice in a row sends one link."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.integration import stripe_events as events
from tests.integration.conftest import RunningApp
from tests.integration.loopback import LoopbackBird
from tests.integration.loopback_stripe import LoopbackStripe
from tests.integration.test_bird_webhook import PHONE, text_in
from tests.integration.test_email_adapters import Inbox
from tests.integration.test_membership_flow import WELCOME, journeys, love_token
from tests.integration.test_stripe_flow import CHECKOUT, deliver_and_apply, paying_member
from weft.config import Settings

PROGRAM = Settings().program_name
GIFT_THANKS = f"Thank you for your $25 gift to {PROGRAM}! Your membership stays $10 monthly. Reply STOP to opt out."


def checkout(app: RunningApp, tier: str, payment_type: str, token: str | None) -> dict[str, Any]:
    form = {"tier": tier, "payment_type": payment_type, "email": "ana@example.org", "phone": PHONE, "token": token}
    response = app.client.post(CHECKOUT, json=form)
    assert response.status_code == 200, response.text
    return dict(response.json())


def all_journeys_done(app: RunningApp, count: int) -> None:
    app.wait_for(lambda: len(journeys(app)) == count and all(len(j["steps"]) == 5 for j in journeys(app)),
                 timeout=10)


def subjects(inbox: Inbox) -> list[str]:
    return [str(message_from_bytes(e.original_content or b"", policy=policy.default)["subject"])
            for e in inbox.envelopes]


def test_a_gift_from_a_monthly_member_is_thanked_by_text_and_email_and_keeps_their_tier(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird, smtp_inbox: tuple[Inbox, int]
) -> None:
    paying_member(stripe_app, stripe_server, bird)
    token = parse_qs(urlsplit(bird.texts()[0].split("Click here: ")[1]).query)["t"][0]
    before = set(stripe_server.sessions)
    checkout(stripe_app, "25", "one_time", token)
    (gift,) = set(stripe_server.sessions) - before
    deliver_and_apply(stripe_app, events.checkout_session_completed(stripe_server.complete_session(gift, phone=PHONE)))
    all_journeys_done(stripe_app, 2)

    stripe_app.wait_for(lambda: len(bird.texts()) == 3)
    assert bird.texts()[1:] == [WELCOME, GIFT_THANKS]
    stripe_app.wait_for(lambda: len(smtp_inbox[0].envelopes) == 2)
    assert subjects(smtp_inbox[0]) == ["Welcome to Community Weft", f"Thank you from {PROGRAM}"]
    member = stripe_app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["tier"], member["paid_tier"]) == ("$10 monthly", "10")
    assert [j["greeting"] for j in journeys(stripe_app)] == ["thanks_gift", "welcome"]


def test_a_second_monthly_checkout_from_the_link_goes_to_stripes_customer_portal(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    session = paying_member(stripe_app, stripe_server, bird)
    token = parse_qs(urlsplit(bird.texts()[0].split("Click here: ")[1]).query)["t"][0]

    answer = checkout(stripe_app, "25", "monthly", token)

    assert answer["portal"] is True and answer["url"].startswith("https://billing.stripe.com/p/session/")
    (call,) = stripe_server.calls_to("POST", "/v1/billing_portal/sessions")
    assert call.params == {"customer": session["customer"], "return_url": "https://sms.example.com/?phone=%2B14155550123"}
    assert list(stripe_server.sessions) == [session["id"]]
    assert len(stripe_app.admin("/api/admin/payments").json()["payments"]) == 1


def test_a_second_monthly_checkout_without_the_link_is_refused_and_says_what_to_do(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    paying_member(stripe_app, stripe_server, bird)
    form = {"tier": "25", "payment_type": "monthly", "email": "ana@example.org", "phone": PHONE}

    response = stripe_app.client.post(CHECKOUT, json=form)

    assert response.status_code == 400
    assert response.json()["field"] == "payment_type"
    assert "text MEMBERSHIP to us" in response.json()["error"]
    assert stripe_server.calls_to("POST", "/v1/billing_portal/sessions") == []
    assert len(stripe_server.sessions) == 1


def test_membership_texts_a_short_lived_link_that_leads_to_the_portal(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    session = paying_member(stripe_app, stripe_server, bird)
    sent = len(bird.texts())

    text_in(stripe_app, "Membership", "membership-1")
    stripe_app.wait_for(lambda: len(bird.texts()) == sent + 1)

    reply = bird.texts()[-1]
    assert reply.startswith(f"Change or cancel your {PROGRAM} plan here: "
                            "https://sms.example.com/membership?phone=")
    link = urlsplit(reply.split("here: ")[1].split(" ")[0])
    opened = stripe_app.client.get(f"{link.path}?{link.query}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("https://billing.stripe.com/p/session/")
    (call,) = stripe_server.calls_to("POST", "/v1/billing_portal/sessions")
    assert call.params["customer"] == session["customer"]
    forged = stripe_app.client.get(f"{link.path}?phone=%2B14155550123&t=1.forged", follow_redirects=False)
    assert forged.status_code == 200 and "This link has expired or is not valid" in forged.text


def test_membership_from_a_number_without_a_plan_gets_a_kind_answer(app: RunningApp, bird: LoopbackBird) -> None:
    text_in(app, "MEMBERSHIP", "membership-1")
    app.wait_for(lambda: len(bird.texts()) == 1)

    assert bird.texts() == [f"{PROGRAM}: this number has no monthly plan with us, so there is nothing to change. "
                            "To join or give, text LOVE."]


def test_an_opted_out_number_gets_nothing_for_membership(app: RunningApp, bird: LoopbackBird) -> None:
    text_in(app, "LOVE", "love-1")
    app.wait_for(lambda: len(bird.texts()) == 1)
    text_in(app, "STOP", "stop-1")
    app.wait_for(lambda: len(bird.texts()) == 2)

    text_in(app, "MEMBERSHIP", "membership-1")
    text_in(app, "HELP", "help-1")
    app.wait_for(lambda: len(bird.texts()) == 3)

    assert bird.texts()[1].startswith("You have been successfully unsubscribed.")
    assert bird.texts()[2].startswith(f"{PROGRAM}: you have opted out")
    assert [m["kind"] for m in app.admin("/api/admin/messages").json()["messages"]] == [
        "help", "opt_out_confirmation", "join_link"]


def test_a_second_love_within_ten_minutes_gets_no_second_link(app: RunningApp, bird: LoopbackBird) -> None:
    text_in(app, "LOVE", "love-1")
    text_in(app, "love", "love-2")
    text_in(app, "HELP", "help-1")
    app.wait_for(lambda: len(bird.texts()) == 2)

    assert bird.texts()[0].startswith(f"Thanks for joining {PROGRAM}! Click here: ")
    assert bird.texts()[1].startswith(f"{PROGRAM}: 1 care message a month.")


def test_a_second_monthly_plan_in_test_mode_goes_to_the_portal_stand_in(app: RunningApp, bird: LoopbackBird) -> None:
    token = love_token(app, bird)
    url = checkout(app, "10", "monthly", token)["url"]
    assert app.client.post(f"{url}/pay", follow_redirects=False).status_code == 303
    all_journeys_done(app, 1)

    answer = checkout(app, "25", "monthly", token)

    assert answer["portal"] is True and answer["url"].startswith("/test-portal/bps_test_")
    page = app.client.get(answer["url"])
    assert page.status_code == 200
    assert "Test mode: this page stands in for Stripe&#39;s customer portal" in page.text
    assert 'href="https://sms.example.com/?phone=%2B14155550123"' in page.text


def test_cancelling_in_the_test_mode_portal_ends_the_plan_and_leaves_a_free_member(
    app: RunningApp, bird: LoopbackBird
) -> None:
    token = love_token(app, bird)
    url = checkout(app, "10", "monthly", token)["url"]
    app.client.post(f"{url}/pay", follow_redirects=False)
    portal = checkout(app, "25", "monthly", token)["url"]

    cancelled = app.client.post(f"{portal}/cancel", follow_redirects=False)

    assert cancelled.status_code == 303
    page = app.client.get(cancelled.headers["location"])
    assert "Your monthly plan is cancelled and nothing more will be charged" in page.text
    assert "Cancel my monthly plan" not in page.text
    member = app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["tier"], member["membership"], member["consent"]) == ("Free", "free", "subscribed")
    assert [p["status"] for p in app.admin("/api/admin/payments").json()["payments"]] == ["cancelled"]


def test_a_membership_link_while_stripe_refuses_the_portal_shows_a_page_to_try_later(
    stripe_app: RunningApp, stripe_server: LoopbackStripe, bird: LoopbackBird
) -> None:
    paying_member(stripe_app, stripe_server, bird)
    text_in(stripe_app, "MEMBERSHIP", "membership-1")
    stripe_app.wait_for(lambda: bird.texts()[-1].startswith("Change or cancel"))
    link = urlsplit(bird.texts()[-1].split("here: ")[1].split(" ")[0])
    stripe_server.fail_next(400, {"error": {"type": "invalid_request_error",
                                            "message": "No configuration provided and your test mode default "
                                                       "configuration has not been created."}})

    page = stripe_app.client.get(f"{link.path}?{link.query}", follow_redirects=False)

    assert page.status_code == 503
    assert "We could not open your membership page just now" in page.text


def test_a_membership_link_with_a_bad_number_or_token_only_says_the_link_is_not_valid(app: RunningApp) -> None:
    for query in ("", "?phone=12&t=x", "?phone=%2B14155550123", "?phone=" + "9" * 500 + "&t=" + "f" * 500 + ".x",
                  "?phone=%2B14155550123&t=ffffffffffffffffffff.x", "?phone=%F0%9F%98%80&t=%F0%9F%98%80"):
        page = app.client.get(f"/membership{query}", follow_redirects=False)
        assert page.status_code == 200, query
        assert "This link has expired or is not valid" in page.text
