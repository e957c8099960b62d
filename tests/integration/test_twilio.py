"""Twilio end to end: its signed form webhooks into the real app, replies and their status callbacks through the
real Twilio adapter against a loopback Twilio, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import attrs
import pytest

from tests.integration.conftest import PUBLIC_URL, RunningApp, fast_container, start_app
from tests.integration.loopback import Canned
from tests.integration.loopback_twilio import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, LoopbackTwilio
from tests.integration.signing import twilio_signature
from weft.config import Settings

PHONE = "+14155550123"
INBOUND = "/twilio-sms-webhook"
STATUS = "/twilio-status"


@pytest.fixture
def twilio() -> Iterator[LoopbackTwilio]:
    server = LoopbackTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def twilio_settings(settings: Settings, twilio: LoopbackTwilio) -> Settings:
    return attrs.evolve(settings, sms_provider="twilio", twilio_api_url=twilio.url, twilio_account_sid=ACCOUNT_SID,
                        twilio_auth_token=AUTH_TOKEN, twilio_from_number="+14155550199",
                        link_secret="link-secret-for-tests")


@pytest.fixture
def app(twilio_settings: Settings) -> Iterator[RunningApp]:
    running = start_app(fast_container(twilio_settings))
    yield running
    running.stop()


def inbound_form(text: str, sid: str, phone: str = PHONE) -> list[tuple[str, str]]:
    return [("ToCountry", "US"), ("SmsMessageSid", sid), ("NumMedia", "0"), ("SmsSid", sid),
            ("SmsStatus", "received"), ("Body", text), ("To", OUR_NUMBER), ("NumSegments", "1"),
            ("MessageSid", sid), ("AccountSid", ACCOUNT_SID), ("From", phone), ("ApiVersion", "2010-04-01"),
            ("FromCity", ""), ("ToZip", "")]


def post_signed(app: RunningApp, path: str, form: list[tuple[str, str]], token: str = AUTH_TOKEN,
                signed_url: str | None = None) -> Any:
    signature = twilio_signature(token, signed_url or PUBLIC_URL + path, form)
    return app.client.post(path, content=urlencode(form), headers={
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})


def text_in(app: RunningApp, text: str, sid: str, phone: str = PHONE) -> None:
    response = post_signed(app, INBOUND, inbound_form(text, sid, phone))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def member(app: RunningApp, phone: str = PHONE) -> dict[str, Any]:
    app.wait_for(lambda: app.admin(f"/api/admin/subscribers/{phone}").status_code == 200
                 and all(m["processed_at"] for m in app.admin(f"/api/admin/subscribers/{phone}").json()["inbound"]))
    return dict(app.admin(f"/api/admin/subscribers/{phone}").json())


def settled(app: RunningApp, count: int) -> list[dict[str, Any]]:
    """The outbox's messages once `count` of them have an outcome, newest first."""
    app.wait_for(lambda: sum(m["status"] != "pending" for m in app.admin("/api/admin/messages").json()["messages"])
                 >= count)
    return list(app.admin("/api/admin/messages").json()["messages"])


def test_the_signing_helper_matches_the_reference_vector() -> None:
    form = [("AccountSid", ACCOUNT_SID), ("Body", "STOP"), ("From", "+14155550123"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"), ("NumMedia", "0"), ("To", "+14155550100")]
    assert twilio_signature(AUTH_TOKEN, "https://sms.example.com/twilio-sms-webhook", form) == \
        "SzQPixVJGpf2bKh1JsXif7SfdC4="


@pytest.mark.parametrize(("texts", "consent", "kind"), [
    (["LOVE"], "subscribed", "join_link"),
    (["LOVE", "STOP"], "opted_out", "opt_out_confirmation"),
    (["STOP", "START"], "subscribed", "opt_in_confirmation"),
    (["STOP", "YES"], "subscribed", "opt_in_confirmation"),
    (["STOP", "HELP"], "opted_out", "help"),
    (["HELP"], "none", "help"),
    (["LOVE", "UNSUB"], "subscribed", "downgrade_confirmation"),
])
def test_every_keyword_through_twilio_changes_consent_and_replies_from_the_number_texted(
    app: RunningApp, twilio: LoopbackTwilio, texts: list[str], consent: str, kind: str
) -> None:
    for number, text in enumerate(texts):
        text_in(app, text, f"SM{number:032x}")
        app.wait_for(lambda n=number: len(twilio.sent()) == n + 1)
    assert member(app)["consent"] == consent
    latest = settled(app, len(texts))[0]
    assert (latest["kind"], latest["status"]) == (kind, "sent")
    request = twilio.sent()[-1]
    assert request["To"] == PHONE
    assert request["From"] == OUR_NUMBER  # the number the person texted, from the reply route
    assert request["Body"] == latest["text"]
    assert request["StatusCallback"] == f"{PUBLIC_URL}/twilio-status"
    assert latest["provider_id"].startswith("SM")


def test_a_messaging_service_sends_instead_of_a_number(
    twilio_settings: Settings, twilio: LoopbackTwilio
) -> None:
    service = "MG" + "0123456789abcdef" * 2
    running = start_app(fast_container(attrs.evolve(twilio_settings, twilio_messaging_service_sid=service)))
    try:
        text_in(running, "LOVE", "SM1")
        running.wait_for(lambda: len(twilio.sent()) == 1)
    finally:
        running.stop()
    assert twilio.sent()[0]["MessagingServiceSid"] == service
    assert "From" not in twilio.sent()[0]


def test_with_advanced_opt_out_twilio_answers_stop_and_weft_only_records_it(
    twilio_settings: Settings, twilio: LoopbackTwilio
) -> None:
    running = start_app(fast_container(attrs.evolve(twilio_settings, provider_sends_keyword_replies=True)))
    try:
        text_in(running, "STOP", "SM1")  # an opt-out is applied before the answer, with any reply queued
        assert member(running)["consent"] == "opted_out"
        assert running.admin("/api/admin/messages").json() == {"messages": [], "next": None}
        text_in(running, "LOVE", "SM2")
        running.wait_for(lambda: len(twilio.sent()) == 1)
    finally:
        running.stop()
    assert len(twilio.attempts()) == 1
    assert "http" in twilio.sent()[0]["Body"]  # the LOVE link is Weft's to send; the STOP reply was Twilio's


def test_the_same_message_sid_twice_is_stored_and_answered_once(app: RunningApp, twilio: LoopbackTwilio) -> None:
    text_in(app, "LOVE", "SM-dup")
    text_in(app, "LOVE", "SM-dup")
    app.wait_for(lambda: len(twilio.sent()) == 1)
    assert len(member(app)["inbound"]) == 1
    assert len(app.admin("/api/admin/messages").json()["messages"]) == 1


@pytest.mark.parametrize("forge", ["unsigned", "wrong token", "other url", "changed body"])
def test_a_forged_or_unsigned_post_is_refused_with_403_and_changes_nothing(app: RunningApp, forge: str) -> None:
    form = inbound_form("STOP", "SM-forged")
    if forge == "unsigned":
        response = app.client.post(INBOUND, content=urlencode(form),
                                   headers={"content-type": "application/x-www-form-urlencoded"})
    elif forge == "wrong token":
        response = post_signed(app, INBOUND, form, token="f" * 32)
    elif forge == "other url":
        response = post_signed(app, INBOUND, form, signed_url="https://evil.example.com" + INBOUND)
    else:
        signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + INBOUND, form)
        changed = [(k, "+14155550999" if k == "From" else v) for k, v in form]
        response = app.client.post(INBOUND, content=urlencode(changed), headers={
            "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature})
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json()["error"]
    assert app.admin("/api/admin/subscribers").json() == {"subscribers": [], "next": None}
    unsigned_status = app.client.post(STATUS, content=urlencode({"MessageSid": "SM1", "MessageStatus": "failed"}),
                                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned_status.status_code == 403


def test_a_form_without_a_sender_gets_a_400_naming_it(app: RunningApp) -> None:
    form = [(k, v) for k, v in inbound_form("LOVE", "SM1") if k != "From"]
    response = post_signed(app, INBOUND, form)
    assert response.status_code == 400
    assert "From" in response.json()["error"]


def test_21610_means_the_person_opted_out_at_twilio_and_is_recorded_and_not_retried(
    app: RunningApp, twilio: LoopbackTwilio
) -> None:
    twilio.refusals[PHONE] = (400, 21610, "Attempt to send to unsubscribed recipient")
    text_in(app, "LOVE", "SM1")
    (message,) = settled(app, 1)
    assert message["status"] == "failed"
    assert "21610" in message["error"]
    detail = member(app)
    assert detail["consent"] == "opted_out"
    assert detail["consent_history"][-1]["reason"] == "opted out at provider"
    assert len(twilio.attempts()) == 1


def test_an_invalid_number_fails_for_good_after_one_attempt(app: RunningApp, twilio: LoopbackTwilio) -> None:
    twilio.refusals[PHONE] = (400, 21614, "'To' number is not a valid mobile number")
    text_in(app, "LOVE", "SM1")
    (message,) = settled(app, 1)
    assert message["status"] == "failed"
    assert "cannot receive texts" in message["error"]
    assert member(app)["consent"] == "subscribed"
    assert len(twilio.attempts()) == 1


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (503, 20500)])
def test_a_throttled_or_failing_twilio_is_retried_and_the_text_sent_once(
    app: RunningApp, twilio: LoopbackTwilio, status: int, code: int
) -> None:
    twilio.answer_next(Canned(status, {"code": code, "message": "Too Many Requests", "status": status},
                              {"retry-after": "0"}))
    text_in(app, "LOVE", "SM1")
    (message,) = settled(app, 1)
    assert message["status"] == "sent"
    assert len(twilio.attempts()) == 2
    assert len(twilio.sent()) == 1


def status_form(sid: str, status: str, code: str = "") -> list[tuple[str, str]]:
    form = [("MessageSid", sid), ("SmsSid", sid), ("MessageStatus", status), ("SmsStatus", status),
            ("AccountSid", ACCOUNT_SID), ("From", OUR_NUMBER), ("To", PHONE), ("ApiVersion", "2010-04-01")]
    return form + ([("ErrorCode", code)] if code else [])


@pytest.mark.parametrize("order", [
    ["sent", "delivered"], ["delivered", "sent"], ["delivered", "sent", "delivered", "queued"],
])
def test_status_callbacks_in_any_order_and_repeated_end_delivered(
    app: RunningApp, twilio: LoopbackTwilio, order: list[str]
) -> None:
    text_in(app, "LOVE", "SM1")
    (message,) = settled(app, 1)
    for status in order:
        response = post_signed(app, STATUS, status_form(message["provider_id"], status))
        assert response.status_code == 200, response.text
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    assert message["delivery"]["state"] == "delivered"


def test_an_undelivered_text_keeps_twilios_error_code_and_counts_as_failed_in_the_stats(
    app: RunningApp, twilio: LoopbackTwilio
) -> None:
    text_in(app, "LOVE", "SM1")
    text_in(app, "LOVE", "SM2", phone="+14155550124")
    first, second = settled(app, 2)
    post_signed(app, STATUS, status_form(first["provider_id"], "undelivered", "30003"))
    post_signed(app, STATUS, status_form(second["provider_id"], "delivered"))
    by_id = {m["id"]: m for m in app.admin("/api/admin/messages").json()["messages"]}
    assert by_id[first["id"]]["delivery"]["state"] == "undelivered"
    assert by_id[first["id"]]["delivery"]["error_code"] == "30003"
    stats = app.admin("/api/admin/stats?hours=24").json()
    assert stats["hours"] == 24 and len(stats["sms"]["hourly"]) == 24
    assert {k: stats["sms"][k] for k in ("pending", "sent", "delivered", "failed")} == \
        {"pending": 0, "sent": 0, "delivered": 1, "failed": 1}
    assert stats["sms"]["success_rate"] == 0.5
    assert stats["sms"]["hourly"][-1]["delivered"] == 1


def test_a_status_for_an_unknown_message_is_answered_and_ignored(app: RunningApp) -> None:
    response = post_signed(app, STATUS, status_form("SM" + "f" * 32, "delivered"))
    assert response.status_code == 200
    assert app.admin("/api/admin/messages").json() == {"messages": [], "next": None}


@pytest.mark.parametrize("hours", ["0", "-1", "abc", "100000"])
def test_stats_refuse_a_window_that_is_not_a_number_of_hours(app: RunningApp, hours: str) -> None:
    response = app.admin(f"/api/admin/stats?hours={hours}")
    assert response.status_code == 400
    assert "hours" in response.json()["error"]


def test_bird_routes_are_closed_when_twilio_is_the_provider_and_bird_has_no_key(
    twilio_settings: Settings,
) -> None:
    running = start_app(fast_container(attrs.evolve(twilio_settings, bird_signing_key="")))
    try:
        assert running.client.post("/bird-sms-webhook", json={}).status_code == 404
    finally:
        running.stop()
