"""Members are told the truth: the success page's statement and the email actually sent (through SMTP to a local
server) follow the number's consent; the program name is one setting; the checkout API refuses bad input with
sentences for people."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import attrs
import pytest

from tests.integration.conftest import RunningApp, fast_container, start_app
from tests.integration.loopback import LoopbackBird
from tests.integration.loopback_stripe import LoopbackStripe
from tests.integration.test_bird_webhook import PHONE, text_in
from tests.integration.test_email_adapters import Inbox
from tests.integration.test_membership_flow import CHECKOUT, love_token, wait_for_journey_end
from weft.config import Settings

UNPROVEN = "+12125550143"


@pytest.fixture
def mail_app(settings: Settings, smtp_inbox: tuple[Inbox, int]) -> Iterator[RunningApp]:
    """The app with Bird loopback SMS and a real SMTP server receiving its email."""
    running = start_app(fast_container(attrs.evolve(
        settings, email_provider="smtp", smtp_host="127.0.0.1", smtp_port=smtp_inbox[1], smtp_tls="none")))
    yield running
    running.stop()


def sign_up(app: RunningApp, phone: str, token: str | None = None, **form: Any) -> dict[str, Any]:
    """A free sign-up from the page, followed to the end of its journey; what the success page is told."""
    response = app.client.post(CHECKOUT, json={"tier": "free", "email": "kim@example.org", "phone": phone,
                                               "token": token, **form})
    assert response.status_code == 200, response.text
    wait_for_journey_end(app)
    session_id = response.json()["redirect"].split("session_id=")[1]
    return dict(app.client.get("/api/stripe/session", params={"session_id": session_id}).json())


def email_sent(inbox: Inbox) -> tuple[str, str]:
    """The subject and plain text of the one email the SMTP server received."""
    (envelope,) = inbox.envelopes
    message: EmailMessage = inbox.received()
    return str(message["Subject"]), message.get_body(("plain",)).get_content()


def test_an_unproven_sign_up_is_told_to_reply_yes_on_the_page_and_in_the_email(
    mail_app: RunningApp, bird: LoopbackBird, smtp_inbox: tuple[Inbox, int]
) -> None:
    session = sign_up(mail_app, UNPROVEN)
    assert (session["outcome"], session["title"]) == ("confirm", "Check your phone")
    assert "Reply YES" in session["next_steps"] and "welcome text" not in session["next_steps"]
    mail_app.wait_for(lambda: len(smtp_inbox[0].envelopes) == 1)
    subject, text = email_sent(smtp_inbox[0])
    assert subject == "Confirm your Community Weft membership by text"
    assert "Reply YES to that text" in text and "we will not send you any other texts" in text
    assert "monthly care messages" not in text
    assert bird.texts() == ["Reply YES to confirm your Community Weft membership"]


def test_a_number_that_opted_out_is_told_so_and_how_to_rejoin_and_its_membership_is_recorded(
    mail_app: RunningApp, bird: LoopbackBird, smtp_inbox: tuple[Inbox, int]
) -> None:
    text_in(mail_app, "STOP", "stop-1")
    mail_app.wait_for(lambda: len(bird.sent()) == 1)
    session = sign_up(mail_app, PHONE)
    assert (session["outcome"], session["title"]) == ("opted_out", "Thank you for joining Community Weft")
    assert session["next_steps"] == ("Your membership is recorded, but this number opted out of our texts, so we "
                                     "won't text you. To get texts again, text START or LOVE to us.")
    mail_app.wait_for(lambda: len(smtp_inbox[0].envelopes) == 1)
    subject, text = email_sent(smtp_inbox[0])
    assert subject == "Your Community Weft membership"
    assert "has opted out of our texts, so we will not text you" in text and "text START or LOVE" in text
    assert "monthly care messages" not in text and "Welcome" not in text
    member = mail_app.admin(f"/api/admin/subscribers/{PHONE}").json()
    assert (member["consent"], member["membership"]) == ("opted_out", "free")
    (payment,) = mail_app.admin("/api/admin/payments").json()["payments"]
    assert (payment["phone"], payment["status"], payment["email"]) == (PHONE, "completed", "kim@example.org")
    assert len(bird.sent()) == 1  # the STOP confirmation, and nothing since


def test_a_proven_sign_up_is_welcomed_on_the_page_and_in_the_email(
    mail_app: RunningApp, bird: LoopbackBird, smtp_inbox: tuple[Inbox, int]
) -> None:
    session = sign_up(mail_app, PHONE, love_token(mail_app, bird))
    assert (session["outcome"], session["title"]) == ("joined", "Welcome to Community Weft!")
    mail_app.wait_for(lambda: len(smtp_inbox[0].envelopes) == 1)
    subject, text = email_sent(smtp_inbox[0])
    assert subject == "Welcome to Community Weft"
    assert parseaddr(str(smtp_inbox[0].received()["From"]))[0] == "Community Weft"
    assert "monthly care messages" in text


def test_the_program_name_setting_reaches_texts_emails_pages_and_the_stripe_product(
    settings: Settings, stripe_server: LoopbackStripe, smtp_inbox: tuple[Inbox, int], bird: LoopbackBird
) -> None:
    named = attrs.evolve(settings, program_name="Maple Circle", email_provider="smtp", smtp_host="127.0.0.1",
                         smtp_port=smtp_inbox[1], smtp_tls="none", email_from="Maple Circle <hi@maple.example>",
                         stripe_secret_key="sk_test_weft_loopback", stripe_webhook_secret="whsec_x",
                         stripe_api_base=stripe_server.url)
    app = start_app(fast_container(named))
    try:
        text_in(app, "HELP", "help-1")
        app.wait_for(lambda: len(bird.sent()) == 1)
        assert bird.texts()[0].startswith("Maple Circle: 1 care message a month.")
        page = app.client.get("/").text
        assert "<title>Maple Circle</title>" in page and "<h1>Maple Circle</h1>" in page
        assert "by SMS from Maple Circle" in page and "Weft" not in page
        app.client.post(CHECKOUT, json={"tier": "10", "payment_type": "monthly", "email": "ana@example.org",
                                        "phone": PHONE})
        (params,) = stripe_server._session_params.values()
        assert params["line_items"][0]["price_data"]["product_data"]["name"] == "Maple Circle membership ($10 monthly)"
    finally:
        app.stop()


@pytest.mark.parametrize(("form", "field", "error"), [
    ({"phone": "12345"}, "phone", "That phone number doesn't look complete — include the area code"),
    ({"email": "jo@example"}, "email",
     "The part after the @ doesn't look complete — it's usually something like example.org"),
    ({"tier": "custom", "payment_type": "one_time", "amount": "12.50"}, "amount",
     "Amounts are in whole dollars: enter 12 or 13, not 12.50"),
])
def test_the_checkout_api_refuses_bad_input_with_a_sentence_for_people(
    app: RunningApp, form: dict[str, Any], field: str, error: str
) -> None:
    response = app.client.post(CHECKOUT, json={"tier": "free", "email": "jo@example.org", "phone": PHONE, **form})
    assert (response.status_code, response.json()) == (400, {"error": error, "field": field})
    assert app.admin("/api/admin/payments").json()["payments"] == []


@pytest.mark.parametrize(("amount", "price"), [("1,000", "$1,000"), ("$25", "$25")])
def test_the_checkout_api_takes_custom_amounts_as_people_write_them(app: RunningApp, amount: str, price: str) -> None:
    response = app.client.post(CHECKOUT, json={"tier": "custom", "payment_type": "one_time", "amount": amount,
                                               "email": "jo@example.org", "phone": PHONE})
    assert response.status_code == 200, response.text
    assert f"Pay {price} (test)" in app.client.get(response.json()["url"]).text


def test_the_link_from_before_an_opt_out_does_not_opt_the_number_back_in(app: RunningApp, bird: LoopbackBird) -> None:
    token = love_token(app, bird)
    text_in(app, "STOP", "stop-1")
    app.wait_for(lambda: len(bird.sent()) == 2)
    session = sign_up(app, PHONE, token)
    assert session["outcome"] == "opted_out"
    assert app.admin(f"/api/admin/subscribers/{PHONE}").json()["consent"] == "opted_out"
    assert len(bird.sent()) == 2  # the link and the STOP confirmation, nothing after
