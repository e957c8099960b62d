from __future__ import annotations

import asyncio
import logging

import attrs
import pytest

from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fast_container, start_app
from tests.integration.loopback import LoopbackBird
from tests.integration.test_bird_webhook import PHONE, text_in
from weft.config import Settings
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber


def test_the_admin_api_refuses_a_missing_or_wrong_token(app: RunningApp) -> None:
    assert app.client.get("/api/admin/subscribers").status_code == 401
    wrong = app.client.get("/api/admin/messages", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "missing or wrong bearer token"}


def test_the_admin_api_is_disabled_without_a_configured_token(settings: Settings) -> None:
    running = start_app(fast_container(attrs.evolve(settings, admin_token="")))
    try:
        response = running.client.get("/api/admin/subscribers", headers={"Authorization": "Bearer x"})
        assert response.status_code == 401
        assert "WEFT_ADMIN_TOKEN" in response.json()["error"]
    finally:
        running.stop()


def test_the_admin_api_lists_subscribers_and_the_outbox(app: RunningApp, bird: LoopbackBird) -> None:
    text_in(app, "LOVE", "m1")
    text_in(app, "hi", "m2", phone="+12125550143")
    app.wait_for(lambda: len(bird.sent()) == 1)
    phones = {s["phone"]: s["consent"] for s in app.admin("/api/admin/subscribers").json()["subscribers"]}
    assert phones == {PHONE: "subscribed", "+12125550143": "none"}
    app.wait_for(lambda: app.message_statuses() == ["sent"])
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    assert (message["to"], message["kind"], message["attempts"]) == (PHONE, "join_link", 1)


def test_an_unknown_or_invalid_phone_in_the_admin_path_is_a_clear_error(app: RunningApp) -> None:
    assert app.admin("/api/admin/subscribers/+12125550143").status_code == 404
    invalid = app.admin("/api/admin/subscribers/12")
    assert invalid.status_code == 400
    assert "not a valid number" in invalid.json()["error"]


def test_healthz_answers(app: RunningApp) -> None:
    assert app.client.get("/healthz").json() == {"status": "ok"}


def test_a_reply_committed_before_the_process_died_is_sent_at_the_next_start(
    settings: Settings, bird: LoopbackBird
) -> None:
    crashed = fast_container(settings)
    message = InboundSms("before-crash", PhoneNumber(PHONE), "LOVE")
    asyncio.run(crashed.handle_inbound_sms()(message))
    crashed.store().close()
    assert bird.sent() == []
    running = start_app(fast_container(settings))
    try:
        running.wait_for(lambda: len(bird.sent()) == 1)
        assert bird.texts()[0].startswith("Thanks for joining Community Weft!")
        running.wait_for(lambda: running.message_statuses() == ["sent"])
    finally:
        running.stop()


def test_logs_never_carry_a_full_phone_number_or_a_secret(
    app: RunningApp, bird: LoopbackBird, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):  # the per-text line is at DEBUG; every level must mask
        text_in(app, "LOVE", "m1")
        app.wait_for(lambda: len(bird.sent()) == 1)
    assert "0123" in caplog.text
    assert PHONE not in caplog.text and "4155550123" not in caplog.text
    assert ADMIN_TOKEN not in caplog.text and "test-access-key" not in caplog.text
