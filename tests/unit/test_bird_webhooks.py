from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import pytest

from weft.adapters.bird.sender import bird_route
from weft.adapters.bird.webhooks import parse_bird_payload, verify_bird_signature
from weft.domain.errors import InvalidSignature, MalformedWebhook
from weft.domain.messages import DeliveryReceipt, DeliveryState, InboundSms
from weft.domain.phone import PhoneNumber

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bird"
WEBHOOK_URL = "https://sms.example.com/bird-sms-webhook"

CHANNELS_KEY = "bird-test-signing-key"
CHANNELS_HEADERS = {
    "messagebird-signature": "ElxY0tthCpby4D5CBAjsfYfhdeXuSt+2hFp7WbYqIyY=",
    "messagebird-request-timestamp": "1735732800",
}

LEGACY_KEY = "legacy-signing-key"
V1_URL = WEBHOOK_URL + "?originator=14155550123&recipient=14155550100&body=STOP"
V1_HEADERS = {
    "messagebird-signature": "ukt5vC0DzZDW9SDG6vhmgE8neTH7VLRwa4ySoU50OUs=",
    "messagebird-request-timestamp": "1735732800",
}
JWT_URL = WEBHOOK_URL + "?channel=sms"
JWT_BODY = b'{"text":"STOP"}'
JWT_HEADERS = {
    "messagebird-signature-jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJNZXNzYWdlQmlyZCIsIm5iZiI6MTczNTczMjgwMCwiZXhwIjoxNzM1NzMzMTAwLCJq"
        "dGkiOiJ0ZXN0LWp0aS0wMDAxIiwidXJsX2hhc2giOiI3MGM2NzIwODg1YmI4YjI0ODlkMDdiNDkzZjdhNTYxOTE0OGI5YWY2MTQyOTY1NzUzZDg2"
        "ODBlNWRhOGNmZmMxIiwicGF5bG9hZF9oYXNoIjoiOGY4ZjI3MmJiODJkNGUxNzhlOTA4ZDNlYjc5NzcyZDg2OWVkYTNhNTUxYjlhMzBiODU0YjU4"
        "YmFiMjllZjRkNSJ9.LkS4feduiZCO-YKyZnhL90A71ZpIF4HBH4knr2ckubY"
    )
}

PLATFORM_SECRET = "whsec_dGVzdC1rZXktZm9yLWJpcmQtc21zLTAx"
PLATFORM_HEADERS = {
    "webhook-id": "msg_2b7c1e904f3a4d8e",
    "webhook-timestamp": "1735732800",
    "webhook-signature": "v1,HtixEjd7+OBnYqYX0SvHc7WjhpmpkCevTK/xYByPEL0=",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_bytes(name))
    return loaded


def parse_json(payload: dict[str, Any] | bytes) -> InboundSms | None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_bird_payload(body, "application/json", {}, None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(claims: dict[str, Any], key: str = LEGACY_KEY, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(hmac.new(key.encode(), signing_input.encode(), digest).digest())


def jwt_claims(url: str = JWT_URL, body: bytes = JWT_BODY, **overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": "MessageBird",
        "nbf": 1735732800,
        "exp": 1735733100,
        "jti": "test-jti-0002",
        "url_hash": hashlib.sha256(url.encode()).hexdigest(),
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    claims.update(overrides)
    return claims


def test_channels_signature_vector_verifies_despite_its_hours_old_timestamp() -> None:
    verify_bird_signature(CHANNELS_KEY, CHANNELS_HEADERS, fixture_bytes("channels_signed_stop.json"), WEBHOOK_URL)


def test_messagebird_v1_signature_over_the_sorted_query_verifies() -> None:
    verify_bird_signature(LEGACY_KEY, V1_HEADERS, b"", V1_URL)


def test_messagebird_v2_jwt_vector_verifies_although_its_exp_has_passed() -> None:
    verify_bird_signature(LEGACY_KEY, JWT_HEADERS, JWT_BODY, JWT_URL)


def test_platform_standard_webhooks_vector_verifies() -> None:
    verify_bird_signature(PLATFORM_SECRET, PLATFORM_HEADERS, fixture_bytes("platform_sms_received.json"), WEBHOOK_URL)


def test_published_standard_webhooks_vector_verifies() -> None:
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    verify_bird_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, b'{"test": 2432232314}', WEBHOOK_URL)


@pytest.mark.parametrize(
    "name",
    ["channels", "messagebird_v1", "messagebird_v2_jwt", "platform_standard_webhooks", "standard_webhooks_published"],
)
def test_every_vector_in_the_fixture_file_verifies(name: str) -> None:
    vector = fixture_json("signature_vectors.json")[name]
    body = fixture_bytes(vector["body_file"]) if "body_file" in vector else vector["body"].encode()
    verify_bird_signature(vector["signing_key"], vector["headers"], body, vector["url"])


def test_standard_webhooks_accepts_a_rotated_header_when_any_v1_entry_matches() -> None:
    headers = {
        **PLATFORM_HEADERS,
        "webhook-signature": "v1,c3RhbGUtc2lnbmF0dXJl " + PLATFORM_HEADERS["webhook-signature"],
    }
    verify_bird_signature(PLATFORM_SECRET, headers, fixture_bytes("platform_sms_received.json"), WEBHOOK_URL)


def test_standard_webhooks_key_without_whsec_prefix_is_base64_decoded() -> None:
    body = fixture_bytes("platform_sms_received.json")
    verify_bird_signature("dGVzdC1rZXktZm9yLWJpcmQtc21zLTAx", PLATFORM_HEADERS, body, WEBHOOK_URL)


def test_standard_webhooks_key_that_is_not_base64_is_used_as_raw_bytes() -> None:
    signed = b"msg_1.1735732800.{}"
    signature = base64.b64encode(hmac.new(b"plain-secret!", signed, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1735732800", "webhook-signature": f"v1,{signature}"}
    verify_bird_signature("plain-secret!", headers, b"{}", WEBHOOK_URL)


def test_jwt_signed_with_hs512_verifies() -> None:
    headers = {"messagebird-signature-jwt": signed_jwt(jwt_claims(), alg="HS512")}
    verify_bird_signature(LEGACY_KEY, headers, JWT_BODY, JWT_URL)


def test_jwt_without_payload_hash_verifies_an_empty_body() -> None:
    claims = jwt_claims(body=b"")
    del claims["payload_hash"]
    verify_bird_signature(LEGACY_KEY, {"messagebird-signature-jwt": signed_jwt(claims)}, b"", JWT_URL)


def test_channels_signature_rejects_a_tampered_body() -> None:
    body = fixture_bytes("channels_signed_stop.json").replace(b"STOP", b"START")
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_bird_signature(CHANNELS_KEY, CHANNELS_HEADERS, body, WEBHOOK_URL)


def test_channels_signature_rejects_the_wrong_key() -> None:
    with pytest.raises(InvalidSignature):
        verify_bird_signature("other-key", CHANNELS_HEADERS, fixture_bytes("channels_signed_stop.json"), WEBHOOK_URL)


def test_channels_signature_rejects_the_wrong_url() -> None:
    with pytest.raises(InvalidSignature):
        verify_bird_signature(
            CHANNELS_KEY,
            CHANNELS_HEADERS,
            fixture_bytes("channels_signed_stop.json"),
            "http://sms.example.com/bird-sms-webhook",
        )


def test_channels_signature_rejects_a_changed_timestamp() -> None:
    headers = {**CHANNELS_HEADERS, "messagebird-request-timestamp": "1735732801"}
    with pytest.raises(InvalidSignature):
        verify_bird_signature(CHANNELS_KEY, headers, fixture_bytes("channels_signed_stop.json"), WEBHOOK_URL)


def test_messagebird_signature_without_timestamp_header_is_rejected() -> None:
    headers = {"messagebird-signature": CHANNELS_HEADERS["messagebird-signature"]}
    with pytest.raises(InvalidSignature, match="messagebird-request-timestamp"):
        verify_bird_signature(CHANNELS_KEY, headers, fixture_bytes("channels_signed_stop.json"), WEBHOOK_URL)


def test_messagebird_signature_that_is_not_base64_is_rejected() -> None:
    headers = {**CHANNELS_HEADERS, "messagebird-signature": "not*base64!"}
    with pytest.raises(InvalidSignature, match="not valid base64"):
        verify_bird_signature(CHANNELS_KEY, headers, b"{}", WEBHOOK_URL)


def test_messagebird_v1_signature_rejects_a_changed_query_parameter() -> None:
    with pytest.raises(InvalidSignature):
        verify_bird_signature(LEGACY_KEY, V1_HEADERS, b"", V1_URL.replace("body=STOP", "body=START"))


def test_request_without_any_signature_header_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="missing signature header"):
        verify_bird_signature(CHANNELS_KEY, {"content-type": "application/json"}, b"{}", WEBHOOK_URL)


def test_empty_signing_key_rejects_every_request() -> None:
    with pytest.raises(InvalidSignature, match="no Bird signing key"):
        verify_bird_signature("", CHANNELS_HEADERS, fixture_bytes("channels_signed_stop.json"), WEBHOOK_URL)


def test_jwt_rejects_a_tampered_body() -> None:
    with pytest.raises(InvalidSignature, match="payload_hash"):
        verify_bird_signature(LEGACY_KEY, JWT_HEADERS, b'{"text":"START"}', JWT_URL)


def test_jwt_rejects_a_different_url() -> None:
    with pytest.raises(InvalidSignature, match="url_hash"):
        verify_bird_signature(LEGACY_KEY, JWT_HEADERS, JWT_BODY, WEBHOOK_URL)


def test_jwt_rejects_the_wrong_key() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_bird_signature("other-key", JWT_HEADERS, JWT_BODY, JWT_URL)


def test_jwt_rejects_an_issuer_other_than_messagebird() -> None:
    headers = {"messagebird-signature-jwt": signed_jwt(jwt_claims(iss="Mallory"))}
    with pytest.raises(InvalidSignature, match="iss"):
        verify_bird_signature(LEGACY_KEY, headers, JWT_BODY, JWT_URL)


def test_jwt_with_alg_none_is_rejected() -> None:
    token = b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(jwt_claims()).encode()) + "."
    with pytest.raises(InvalidSignature, match="alg"):
        verify_bird_signature(LEGACY_KEY, {"messagebird-signature-jwt": token}, JWT_BODY, JWT_URL)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.!!!", "ünïcode.e30.e30"])
def test_jwt_that_is_garbage_is_rejected(token: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_bird_signature(LEGACY_KEY, {"messagebird-signature-jwt": token}, JWT_BODY, JWT_URL)


def test_standard_webhooks_rejects_a_tampered_body() -> None:
    body = fixture_bytes("platform_sms_received.json").replace(b"STOP", b"START")
    with pytest.raises(InvalidSignature, match="no matching v1"):
        verify_bird_signature(PLATFORM_SECRET, PLATFORM_HEADERS, body, WEBHOOK_URL)


@pytest.mark.parametrize("signature", ["v1,***", "v1", "", "v2,HtixEjd7+OBnYqYX0SvHc7WjhpmpkCevTK/xYByPEL0="])
def test_standard_webhooks_rejects_a_malformed_signature_header(signature: str) -> None:
    headers = {**PLATFORM_HEADERS, "webhook-signature": signature}
    with pytest.raises(InvalidSignature):
        verify_bird_signature(PLATFORM_SECRET, headers, fixture_bytes("platform_sms_received.json"), WEBHOOK_URL)


def test_standard_webhooks_without_webhook_id_is_rejected() -> None:
    headers = {k: v for k, v in PLATFORM_HEADERS.items() if k != "webhook-id"}
    with pytest.raises(InvalidSignature, match="webhook-id"):
        verify_bird_signature(PLATFORM_SECRET, headers, fixture_bytes("platform_sms_received.json"), WEBHOOK_URL)


def test_channels_sms_inbound_becomes_an_inbound_sms() -> None:
    assert parse_json(fixture_bytes("channels_sms_inbound.json")) == InboundSms(
        provider_id="5d0f3a2e-7c41-4b8e-9a0b-2f6d1c9e8a11",
        sender=PhoneNumber("+14155550123"),
        text="STOP",
        reply_route=bird_route("2b7c1e90-4f3a-4d8e-b1c2-9e0f7a6d5c43", None),
        received_at=datetime(2025, 1, 1, 12, 0, 0, 123000, tzinfo=UTC),
    )


def test_signed_channels_vector_body_parses_without_channel_or_time() -> None:
    sms = parse_json(fixture_bytes("channels_signed_stop.json"))
    assert sms == InboundSms(
        provider_id="5d0f3a2e-7c41-4b8e-9a0b-2f6d1c9e8a11", sender=PhoneNumber("+14155550123"), text="STOP"
    )


def test_channels_conversation_id_is_used_when_present() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["conversationId"] = "907798f8-fd72-44d5-8042-fcc05c1bb570"
    sms = parse_json(event)
    assert sms is not None
    assert parse_qs(sms.reply_route or "")["conversation"] == ["907798f8-fd72-44d5-8042-fcc05c1bb570"]


def test_channels_text_is_kept_exactly_as_sent() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["body"]["text"]["text"] = "  Stop please \n"
    sms = parse_json(event)
    assert sms is not None and sms.text == "  Stop please \n"


def test_channels_sms_outbound_status_event_is_a_delivery_receipt() -> None:
    assert parse_json(fixture_bytes("channels_sms_outbound.json")) == DeliveryReceipt(
        provider_id="0b6f4d2c-9e1a-4c7b-8d3f-6a2e5b1c9d07", state=DeliveryState.DELIVERED,
        at=datetime(2025, 1, 1, 12, 0, 3, 910000, tzinfo=UTC), error_code=None, reference=None)


@pytest.mark.parametrize(("status", "state"), [
    ("accepted", DeliveryState.ACCEPTED), ("sent", DeliveryState.SENT), ("sending_failed", DeliveryState.FAILED),
    ("delivery_failed", DeliveryState.UNDELIVERED),
])
def test_channels_outbound_statuses_map_to_delivery_states(status: str, state: DeliveryState) -> None:
    event = fixture_json("channels_sms_outbound.json")
    event["payload"].update(status=status, reference="reply:in-1", failure={"code": 106})
    receipt = parse_json(event)
    assert isinstance(receipt, DeliveryReceipt)
    assert (receipt.state, receipt.reference, receipt.error_code) == (state, "reply:in-1", "106")


def test_an_outbound_status_bird_may_add_later_is_ignored() -> None:
    event = fixture_json("channels_sms_outbound.json")
    event["payload"]["status"] = "teleported"
    assert parse_json(event) is None


def test_inbound_on_another_channel_is_ignored() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["event"] = "whatsapp.inbound"
    assert parse_json(event) is None


def test_unknown_event_name_is_ignored() -> None:
    assert parse_json({"service": "channels", "event": "sms.interaction", "payload": {}}) is None


def test_channels_media_message_without_text_is_ignored() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["body"] = {"type": "image", "image": {"images": [{"mediaUrl": "https://media.example/1.jpg"}]}}
    assert parse_json(event) is None


def test_channels_event_without_sender_phone_names_the_missing_path() -> None:
    event = fixture_json("channels_sms_inbound.json")
    del event["payload"]["sender"]["contact"]["identifierValue"]
    with pytest.raises(MalformedWebhook, match=r"payload\.sender\.contact\.identifierValue is missing"):
        parse_json(event)


def test_channels_event_without_message_id_names_the_missing_path() -> None:
    event = fixture_json("channels_sms_inbound.json")
    del event["payload"]["id"]
    with pytest.raises(MalformedWebhook, match=r"payload\.id is missing"):
        parse_json(event)


def test_channels_event_without_text_names_the_missing_path() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["body"] = {"type": "text"}
    with pytest.raises(MalformedWebhook, match=r"payload\.body\.text\.text is missing"):
        parse_json(event)


def test_channels_event_with_payload_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match=r"payload\.id is missing"):
        parse_json({"service": "channels", "event": "sms.inbound", "payload": "oops"})


def test_invalid_sender_phone_is_malformed_with_the_reason() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["sender"]["contact"]["identifierValue"] = "+1555"
    with pytest.raises(MalformedWebhook, match=r"payload\.sender\.contact\.identifierValue: phone number '\+1555'"):
        parse_json(event)


@pytest.mark.parametrize("sender", ["+19995550123", "+447700900123"])
def test_an_e164_sender_is_taken_as_delivered_even_where_the_numbering_plan_does_not_know_it(sender: str) -> None:
    # The carrier delivered a text from it; refusing it on stale numbering-plan metadata would lose it (a STOP too).
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["sender"]["contact"]["identifierValue"] = f" {sender} "
    sms = parse_json(event)
    assert sms is not None and sms.sender == PhoneNumber(sender)


def test_an_international_sender_is_stored_in_canonical_form() -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["sender"]["contact"]["identifierValue"] = "+610412345678"  # a trunk 0 kept after +61
    sms = parse_json(event)
    assert sms is not None and sms.sender == PhoneNumber("+61412345678")


def test_bare_digits_given_the_plus_by_us_are_validated_in_full() -> None:
    with pytest.raises(MalformedWebhook, match="not a valid number"):
        parse_bird_payload(b"", "", {"originator": "4155550123", "body": "STOP"}, None)


@pytest.mark.parametrize("sender", ["+1 415 555 0123", "(415) 555-0123", "4155550123"])
def test_a_sender_in_any_other_form_is_parsed_and_validated(sender: str) -> None:
    event = fixture_json("channels_sms_inbound.json")
    event["payload"]["sender"]["contact"]["identifierValue"] = sender
    sms = parse_json(event)
    assert sms is not None and sms.sender == PhoneNumber("+14155550123")
    event["payload"]["sender"]["contact"]["identifierValue"] = "(999) 555-0123"
    with pytest.raises(MalformedWebhook, match="not a valid number"):
        parse_json(event)


def test_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="not valid JSON"):
        parse_bird_payload(b"{not json", "application/json", {}, None)


def test_json_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="not an object"):
        parse_bird_payload(b'["sms.inbound"]', "application/json", {}, None)


def test_json_object_without_event_or_type_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="neither an event nor a type"):
        parse_json({"hello": "world"})


def test_json_without_content_type_is_parsed_when_the_body_looks_like_json() -> None:
    sms = parse_bird_payload(fixture_bytes("channels_sms_inbound.json"), "", {}, None)
    assert sms is not None and sms.provider_id == "5d0f3a2e-7c41-4b8e-9a0b-2f6d1c9e8a11"


def test_json_content_type_with_charset_is_parsed() -> None:
    sms = parse_bird_payload(fixture_bytes("platform_sms_received.json"), "application/json; charset=utf-8", {}, None)
    assert sms is not None and sms.sender == PhoneNumber("+14155550123")


def test_conversation_updated_by_the_contact_becomes_an_inbound_sms() -> None:
    assert parse_json(fixture_bytes("conversations_conversation_updated.json")) == InboundSms(
        provider_id="d578f436-b3b7-49e6-95c2-24b77bb4e7ce",
        sender=PhoneNumber("+14155550123"),
        text="STOP",
        reply_route=bird_route("2b7c1e90-4f3a-4d8e-b1c2-9e0f7a6d5c43", "907798f8-fd72-44d5-8042-fcc05c1bb570"),
        received_at=datetime(2025, 1, 1, 12, 0, 0, 123000, tzinfo=UTC),
    )


def test_conversation_created_by_the_contact_becomes_an_inbound_sms() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    event["event"] = "conversation.created"
    sms = parse_json(event)
    assert sms is not None and sms.provider_id == "d578f436-b3b7-49e6-95c2-24b77bb4e7ce"


def test_conversation_whose_last_message_we_sent_is_ignored() -> None:
    assert parse_json(fixture_bytes("conversations_conversation_updated_outbound.json")) is None


def test_conversation_without_last_message_is_ignored() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    del event["payload"]["lastMessage"]
    event["event"] = "conversation.created"
    assert parse_json(event) is None


def test_conversation_deleted_is_ignored() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    event["event"] = "conversation.deleted"
    assert parse_json(event) is None


def test_untyped_sender_matching_the_featured_contact_takes_the_phone_from_the_participant() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    event["payload"]["lastMessage"]["sender"] = {"id": "c3e1b2a4-0d9f-4e7a-8b6c-5a4f3e2d1c0b"}
    sms = parse_json(event)
    assert sms is not None and sms.sender == PhoneNumber("+14155550123")


def test_conversation_text_falls_back_to_the_message_body() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    last = event["payload"]["lastMessage"]
    del last["preview"]
    last["body"] = {"type": "text", "text": {"text": "HELP"}}
    sms = parse_json(event)
    assert sms is not None and sms.text == "HELP"


def test_conversation_with_an_email_contact_is_ignored() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    event["payload"]["lastMessage"]["sender"]["contact"] = {
        "identifierKey": "emailaddress",
        "identifierValue": "john.doe@example.com",
    }
    assert parse_json(event) is None


def test_conversation_message_from_a_contact_without_any_phone_is_malformed() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    del event["payload"]["lastMessage"]["sender"]["contact"]
    event["payload"]["featuredParticipants"] = []
    with pytest.raises(MalformedWebhook, match=r"payload\.lastMessage\.sender\.contact\.identifierValue is missing"):
        parse_json(event)


def test_conversation_message_without_id_is_malformed() -> None:
    event = fixture_json("conversations_conversation_updated.json")
    del event["payload"]["lastMessage"]["id"]
    with pytest.raises(MalformedWebhook, match=r"payload\.lastMessage\.id is missing"):
        parse_json(event)


def test_messagebird_received_message_becomes_an_inbound_sms() -> None:
    assert parse_json(fixture_bytes("messagebird_message_created.json")) == InboundSms(
        provider_id="93a1f7ba935c4ee298cb5ef952052ea7",
        sender=PhoneNumber("+14155550123"),
        text="Testing webhook functionality.",
        reply_route=bird_route("2ceefea7c1b8c79673215c42c1a6b916", "f1e812e9afd6a875d813d51f45823edd"),
        received_at=datetime(2019, 3, 1, 10, 40, 2, 880881, tzinfo=UTC),
    )


def test_messagebird_sent_message_is_ignored() -> None:
    event = fixture_json("messagebird_message_created.json")
    event["message"]["direction"] = "sent"
    assert parse_json(event) is None


def test_messagebird_msisdn_given_as_a_string_gets_its_plus() -> None:
    event = fixture_json("messagebird_message_created.json")
    event["contact"]["msisdn"] = "31612345678"
    sms = parse_json(event)
    assert sms is not None and sms.sender == PhoneNumber("+31612345678")


def test_messagebird_conversation_id_falls_back_to_the_conversation_object() -> None:
    event = fixture_json("messagebird_message_created.json")
    del event["message"]["conversationId"]
    sms = parse_json(event)
    assert sms is not None and parse_qs(sms.reply_route or "")["conversation"] == ["f1e812e9afd6a875d813d51f45823edd"]


def test_messagebird_received_message_without_contact_is_malformed() -> None:
    event = fixture_json("messagebird_message_created.json")
    del event["contact"]
    with pytest.raises(MalformedWebhook, match=r"contact\.msisdn is missing"):
        parse_json(event)


def test_platform_sms_received_becomes_an_inbound_sms() -> None:
    assert parse_json(fixture_bytes("platform_sms_received.json")) == InboundSms(
        provider_id="sms_01krdgeqcxet5s7t44vh8rt9mg",
        sender=PhoneNumber("+14155550123"),
        text="STOP",
        received_at=datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC),
    )


def test_platform_delivery_status_event_is_a_delivery_receipt() -> None:
    event = fixture_json("platform_sms_received.json")
    event["type"] = "sms.undelivered"
    receipt = parse_json(event)
    assert isinstance(receipt, DeliveryReceipt)
    assert (receipt.provider_id, receipt.state) == ("sms_01krdgeqcxet5s7t44vh8rt9mg", DeliveryState.UNDELIVERED)


def test_platform_opt_out_event_is_ignored() -> None:
    event = fixture_json("platform_sms_received.json")
    event["type"] = "sms_suppression.created"
    assert parse_json(event) is None


def test_platform_event_without_sender_names_the_missing_path() -> None:
    event = fixture_json("platform_sms_received.json")
    del event["data"]["from"]
    with pytest.raises(MalformedWebhook, match=r"data\.from is missing"):
        parse_json(event)


def query_fixture(name: str) -> dict[str, str]:
    return dict(parse_qsl(fixture_bytes(name).decode(), keep_blank_values=True))


def test_legacy_vmn_get_callback_becomes_an_inbound_sms() -> None:
    sms = parse_bird_payload(b"", "", query_fixture("legacy_vmn_callback.query.txt"), None)
    assert sms == InboundSms(
        provider_id="e8077d803532c0b5937c639b60216938",
        sender=PhoneNumber("+14155550123"),
        text="STOP",
        received_at=datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC),
    )


def test_legacy_short_code_callback_uses_mid_and_message() -> None:
    sms = parse_bird_payload(b"", "", query_fixture("legacy_shortcode_callback.query.txt"), None)
    assert sms is not None and (sms.provider_id, sms.sender.e164, sms.text) == ("123456789", "+14155550123", "STOP")


def test_flow_builder_forwards_without_id_or_time_are_never_deduped_as_repeats() -> None:
    form = query_fixture("flow_builder_forward.form.txt")
    first = parse_bird_payload(b"", "application/x-www-form-urlencoded", {}, form)
    second = parse_bird_payload(b"", "application/x-www-form-urlencoded", {}, form)
    assert first is not None and second is not None
    assert (first.sender.e164, first.text) == ("+14155550123", "STOP")
    assert first.provider_id.startswith("legacy-") and first.provider_id != second.provider_id


def test_a_legacy_callback_with_a_send_time_but_no_id_gets_a_stable_id() -> None:
    fields = {"originator": "14155550123", "body": "STOP", "createdDatetime": "2025-01-01T12:00:00+00:00"}
    first, second = (parse_bird_payload(b"", "", fields, None) for _ in range(2))
    assert first is not None and second is not None and first.provider_id == second.provider_id


def test_form_body_is_read_when_the_caller_did_not_parse_the_form() -> None:
    body = fixture_bytes("flow_builder_forward.form.txt")
    sms = parse_bird_payload(body, "application/x-www-form-urlencoded; charset=utf-8", {}, None)
    assert sms is not None and (sms.sender.e164, sms.text) == ("+14155550123", "STOP")


def test_derived_legacy_id_differs_when_the_text_differs() -> None:
    sent = {"originator": "14155550123", "createdDatetime": "2025-01-01T12:00:00+00:00"}
    first = parse_bird_payload(b"", "", {**sent, "payload": "STOP"}, None)
    second = parse_bird_payload(b"", "", {**sent, "payload": "START"}, None)
    assert first is not None and second is not None and first.provider_id != second.provider_id


def test_legacy_originator_with_plus_read_as_space_is_still_international() -> None:
    sms = parse_bird_payload(b"", "", {"originator": " 14155550123", "body": "HELP", "id": "abc"}, None)
    assert sms is not None and sms.sender == PhoneNumber("+14155550123")


def test_empty_request_without_legacy_fields_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="expected a JSON body or originator/body fields"):
        parse_bird_payload(b"", "application/json", {}, None)


def test_legacy_callback_without_originator_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="originator is missing"):
        parse_bird_payload(b"", "", {"body": "STOP", "id": "abc"}, None)


def test_legacy_callback_without_text_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="body"):
        parse_bird_payload(b"", "", {"originator": "14155550123", "id": "abc"}, None)


def test_legacy_callback_with_invalid_originator_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="originator: phone number"):
        parse_bird_payload(b"", "", {"originator": "12", "body": "STOP", "id": "abc"}, None)


@pytest.mark.parametrize("bad_id", ["x" * 129, "bad\nid", "   "])
def test_an_id_too_long_or_not_printable_is_malformed(bad_id: str) -> None:
    event = json.loads(fixture_bytes("channels_sms_inbound.json"))
    event["payload"]["id"] = bad_id
    with pytest.raises(MalformedWebhook, match="provider_id"):
        parse_bird_payload(json.dumps(event).encode(), "application/json", {}, None)


def test_a_north_american_sender_in_e164_is_taken_as_it_is_what_parsing_would_give() -> None:
    import phonenumbers

    for sender in ("+12122000001", "+19995550123", "+14155550123"):
        event = fixture_json("channels_sms_inbound.json")
        event["payload"]["sender"]["contact"]["identifierValue"] = sender
        sms = parse_json(event)
        parsed = phonenumbers.parse(sender)
        assert sms is not None and sms.sender.e164 == sender
        assert sender == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
