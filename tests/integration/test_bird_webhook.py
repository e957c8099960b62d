from __future__ import annotations

import json
import threading
from typing import Any

import attrs
import pytest

from tests.integration.conftest import PUBLIC_URL, SIGNING_KEY, RunningApp, fast_container, fixture_bytes, start_app
from tests.integration.loopback import Canned, LoopbackBird
from tests.integration.signing import channels_headers
from weft.config import Settings

WEBHOOK = "/bird-sms-webhook"
PHONE = "+14155550123"


def channels_body(text: str, message_id: str, phone: str = PHONE) -> bytes:
    event = json.loads(fixture_bytes("bird/channels_sms_inbound.json"))
    event["payload"]["id"] = message_id
    event["payload"]["body"]["text"]["text"] = text
    event["payload"]["sender"]["contact"]["identifierValue"] = phone
    return json.dumps(event).encode()


def post_signed(app: RunningApp, body: bytes, path: str = WEBHOOK) -> Any:
    return app.client.post(path, content=body, headers=channels_headers(SIGNING_KEY, PUBLIC_URL + path, body))


def text_in(app: RunningApp, text: str, message_id: str, phone: str = PHONE) -> None:
    response = post_signed(app, channels_body(text, message_id, phone))
    assert response.status_code == 200, response.text


def subscriber(app: RunningApp, phone: str = PHONE) -> dict[str, Any]:
    response = app.admin(f"/api/admin/subscribers/{phone}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def applied(app: RunningApp, phone: str = PHONE) -> dict[str, Any]:
    """The subscriber once the inbound worker has applied every text stored from that number."""
    app.wait_for(lambda: app.admin(f"/api/admin/subscribers/{phone}").status_code == 200
                 and all(m["processed_at"] for m in subscriber(app, phone)["inbound"]))
    return subscriber(app, phone)


def test_signed_stop_from_the_reference_vector_opts_out_and_is_confirmed_through_bird(
    app: RunningApp, bird: LoopbackBird
) -> None:
    body = fixture_bytes("bird/channels_signed_stop.json")
    headers = {"messagebird-signature": "ElxY0tthCpby4D5CBAjsfYfhdeXuSt+2hFp7WbYqIyY=",
               "messagebird-request-timestamp": "1735732800", "content-type": "application/json"}
    response = app.client.post(WEBHOOK, content=body, headers=headers)
    assert response.json() == {"status": "processed"}
    app.wait_for(lambda: len(bird.sent()) == 1)
    request = bird.sent()[0]
    assert request.path == "/workspaces/ws-1/channels/ch-default/messages"
    assert request.headers["authorization"] == "AccessKey test-access-key"
    assert request.json()["receiver"]["contacts"][0]["identifierValue"] == PHONE
    assert bird.texts() == [
        "You have been successfully unsubscribed. You will no longer receive messages. Reply LOVE to rejoin."
    ]
    assert subscriber(app)["consent"] == "opted_out"


def test_love_stop_help_through_signed_webhooks_leave_one_confirmation_and_the_help_answer_after_stop(
    app: RunningApp, bird: LoopbackBird
) -> None:
    text_in(app, "love!", "m1")
    app.wait_for(lambda: len(bird.sent()) == 1)
    text_in(app, "STOP", "m2")
    text_in(app, "HELP", "m3")
    text_in(app, "stop", "m4")
    text_in(app, "hello?", "m5")
    app.wait_for(lambda: len(bird.sent()) == 3)
    app.wait_for(lambda: all(m["status"] != "pending" for m in app.admin("/api/admin/messages").json()["messages"]))
    assert bird.texts()[0].startswith(
        "Thanks for joining Community Weft! Click here: https://sms.example.com/?phone=%2B14155550123&t="
    )
    assert bird.texts()[1].startswith("You have been successfully unsubscribed.")
    assert bird.texts()[2].endswith("Reply LOVE or START to rejoin.")
    detail = subscriber(app)
    assert detail["consent"] == "opted_out"
    assert [(c["consent"], c["message_id"]) for c in detail["consent_history"]] == [
        ("subscribed", "m1"), ("opted_out", "m2")
    ]
    assert [m["text"] for m in detail["inbound"]] == ["love!", "STOP", "HELP", "stop", "hello?"]


def test_a_bad_signature_is_rejected_and_changes_nothing(app: RunningApp, bird: LoopbackBird) -> None:
    body = channels_body("LOVE", "m1")
    headers = channels_headers("wrong-key", PUBLIC_URL + WEBHOOK, body)
    response = app.client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()
    assert app.admin("/api/admin/subscribers").json() == {"subscribers": [], "next": None}


def test_a_signature_for_another_url_is_rejected(app: RunningApp) -> None:
    body = channels_body("LOVE", "m1")
    headers = channels_headers(SIGNING_KEY, "http://127.0.0.1/bird-sms-webhook", body)
    assert app.client.post(WEBHOOK, content=body, headers=headers).status_code == 401


def test_an_unsigned_request_is_rejected_when_a_signing_key_is_set(app: RunningApp) -> None:
    response = app.client.post(WEBHOOK, content=channels_body("LOVE", "m1"))
    assert response.status_code == 401
    assert "signature" in response.json()["error"]


def test_the_platform_api_standard_webhooks_vector_is_accepted(settings: Settings) -> None:
    platform_key = "whsec_dGVzdC1rZXktZm9yLWJpcmQtc21zLTAx"
    running = start_app(fast_container(attrs.evolve(settings, bird_signing_key=platform_key)))
    try:
        body = fixture_bytes("bird/platform_sms_received.json")
        headers = {"webhook-id": "msg_2b7c1e904f3a4d8e", "webhook-timestamp": "1735732800",
                   "webhook-signature": "v1,HtixEjd7+OBnYqYX0SvHc7WjhpmpkCevTK/xYByPEL0=",
                   "content-type": "application/json"}
        assert running.client.post(WEBHOOK, content=body, headers=headers).json() == {"status": "processed"}
        assert subscriber(running)["consent"] == "opted_out"
    finally:
        running.stop()


@pytest.mark.parametrize(("fixture", "last_message"), [
    ("bird/channels_sms_inbound.json", "STOP"),
    ("bird/conversations_conversation_updated.json", "STOP"),
    ("bird/messagebird_message_created.json", "Testing webhook functionality."),
    ("bird/platform_sms_received.json", "STOP"),
])
def test_every_bird_json_format_is_recorded(app: RunningApp, fixture: str, last_message: str) -> None:
    response = post_signed(app, fixture_bytes(fixture))
    # An opt-out is applied before the answer; any other text is stored and applied by the inbound worker.
    assert response.json() == {"status": "processed" if last_message == "STOP" else "received"}
    assert applied(app)["last_message"] == last_message


def test_a_conversation_event_is_answered_in_that_conversation(app: RunningApp, bird: LoopbackBird) -> None:
    event = json.loads(fixture_bytes("bird/conversations_conversation_updated.json"))
    event["payload"]["lastMessage"]["preview"]["text"] = "LOVE"
    post_signed(app, json.dumps(event).encode())
    app.wait_for(lambda: len(bird.sent()) == 1)
    request = bird.sent()[0]
    assert request.path == f"/workspaces/ws-1/conversations/{event['payload']['id']}/messages"
    assert request.json()["participantId"] == "ak-1"
    assert request.json()["recipients"][0]["identifierValue"] == PHONE


def test_a_legacy_get_callback_is_processed(app: RunningApp, bird: LoopbackBird) -> None:
    query = fixture_bytes("bird/legacy_vmn_callback.query.txt").decode().replace("body=STOP", "body=LOVE")
    path = f"{WEBHOOK}?{query}"
    response = app.client.get(path, headers=channels_headers(SIGNING_KEY, PUBLIC_URL + path, b""))
    assert response.json() == {"status": "received"}
    assert applied(app)["consent"] == "subscribed"


def test_a_legacy_form_post_is_processed(app: RunningApp) -> None:
    body = fixture_bytes("bird/flow_builder_forward.form.txt")
    headers = {**channels_headers(SIGNING_KEY, PUBLIC_URL + WEBHOOK, body),
               "content-type": "application/x-www-form-urlencoded"}
    assert app.client.post(WEBHOOK, content=body, headers=headers).json() == {"status": "processed"}
    assert subscriber(app)["consent"] == "opted_out"


def test_the_verification_get_echoes_the_challenge(app: RunningApp) -> None:
    assert app.client.get(f"{WEBHOOK}?challenge=abc123").text == "abc123"
    assert app.client.get(WEBHOOK).status_code == 200


def test_a_status_event_for_a_message_we_did_not_send_is_acknowledged_and_ignored(app: RunningApp) -> None:
    response = post_signed(app, fixture_bytes("bird/channels_sms_outbound.json"))
    assert response.json() == {"status": "ignored"}
    assert app.admin("/api/admin/subscribers").json() == {"subscribers": [], "next": None}


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "JSON"),
    (b"[1, 2]", "object"),
    (json.dumps({"service": "channels", "event": "sms.inbound", "payload": {"id": "x"}}).encode(), "sender"),
])
def test_a_malformed_body_gets_a_400_saying_what_is_wrong(app: RunningApp, body: bytes, fragment: str) -> None:
    response = post_signed(app, body)
    assert response.status_code == 400
    assert fragment.lower() in response.json()["error"].lower()


def test_an_invalid_phone_number_gets_a_400(app: RunningApp) -> None:
    response = post_signed(app, channels_body("LOVE", "m1", phone="+1555"))
    assert response.status_code == 400
    assert "phone" in response.json()["error"].lower()


def test_a_redelivery_is_processed_once(app: RunningApp, bird: LoopbackBird) -> None:
    body = channels_body("LOVE", "same-id")
    assert post_signed(app, body).json() == {"status": "received"}
    assert post_signed(app, body).json() == {"status": "duplicate"}
    app.wait_for(lambda: len(bird.sent()) == 1)
    assert len(subscriber(app)["inbound"]) == 1
    assert len(app.admin("/api/admin/messages").json()["messages"]) == 1


def test_concurrent_duplicates_are_processed_once(app: RunningApp, bird: LoopbackBird) -> None:
    body = channels_body("LOVE", "raced-id")
    statuses: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        statuses.append(post_signed(app, body).json()["status"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["duplicate"] * 7 + ["received"]
    app.wait_for(lambda: len(bird.sent()) == 1)
    assert len(app.admin("/api/admin/messages").json()["messages"]) == 1


def test_bird_429_then_503_is_retried_until_it_is_accepted_and_the_429_costs_no_attempt(
    app: RunningApp, bird: LoopbackBird
) -> None:
    bird.answer_next(Canned(429, {"error": "rate"}, {"retry-after": "0"}), Canned(503, {"error": "down"}))
    text_in(app, "LOVE", "m1")
    app.wait_for(lambda: app.message_statuses() == ["sent"])
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    assert message["attempts"] == 2
    assert message["provider_id"] == "bird-msg-3"
    assert len(bird.sent()) == 3


def test_a_permanent_bird_error_is_recorded_and_not_retried(app: RunningApp, bird: LoopbackBird) -> None:
    bird.answer_next(Canned(422, {"code": "InvalidPayload", "message": "receiver invalid"}))
    text_in(app, "LOVE", "m1")
    app.wait_for(lambda: app.message_statuses() == ["failed"])
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    assert "422" in message["error"] and "receiver invalid" in message["error"]
    assert len(bird.sent()) == 1
