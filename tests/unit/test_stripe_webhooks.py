from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.stripe_events import sign
from weft.adapters.stripe_webhooks import parse_stripe_event
from weft.domain.errors import InvalidSignature, MalformedWebhook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"

# The test vector of the Stripe reference (§3.2): the exact bytes Stripe signed, one line, no trailing newline.
SECRET = "whsec_test_0123456789abcdef0123456789abcdef"
TIMESTAMP = 1735732800
PAYLOAD = (
    b'{"id":"evt_test_0001","object":"event","type":"checkout.session.completed",'
    b'"data":{"object":{"id":"cs_test_0001","object":"checkout.session","payment_status":"paid"}}}'
)
SIGNATURE = "01be1cf42ed9bf095dbc6744ca909a386cd6ef034c958cacf6d8696ddf89ba10"
HEADER = f"t={TIMESTAMP},v1={SIGNATURE}"
JUST_SIGNED = TIMESTAMP + 10


def test_reference_vector_is_accepted_and_parsed() -> None:
    event = parse_stripe_event(PAYLOAD, HEADER, SECRET, now=JUST_SIGNED)

    assert (event.id, event.type) == ("evt_test_0001", "checkout.session.completed")
    assert event.object == {"id": "cs_test_0001", "object": "checkout.session", "payment_status": "paid"}


def test_sign_helper_reproduces_the_reference_header() -> None:
    assert sign(PAYLOAD, SECRET, timestamp=TIMESTAMP) == HEADER


def test_zero_tolerance_accepts_an_old_timestamp() -> None:
    assert parse_stripe_event(PAYLOAD, HEADER, SECRET, tolerance=0).id == "evt_test_0001"


def test_timestamp_older_than_tolerance_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="older"):
        parse_stripe_event(PAYLOAD, HEADER, SECRET, now=TIMESTAMP + 301)


def test_future_timestamp_within_any_skew_is_accepted() -> None:
    assert parse_stripe_event(PAYLOAD, HEADER, SECRET, now=TIMESTAMP - 600).id == "evt_test_0001"


def test_body_with_one_trailing_space_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        parse_stripe_event(PAYLOAD + b" ", HEADER, SECRET, now=JUST_SIGNED)


def test_reserialised_body_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(json.dumps(json.loads(PAYLOAD)).encode(), HEADER, SECRET, now=JUST_SIGNED)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(PAYLOAD, HEADER, "whsec_some_other_endpoint", now=JUST_SIGNED)


def test_secret_without_whsec_prefix_is_not_the_signing_key() -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(PAYLOAD, HEADER, SECRET.removeprefix("whsec_"), now=JUST_SIGNED)


def test_any_matching_v1_entry_is_enough() -> None:
    header = f"t={TIMESTAMP},v1={'0' * 64},v1={SIGNATURE},v0=deadbeef"

    assert parse_stripe_event(PAYLOAD, header, SECRET, now=JUST_SIGNED).id == "evt_test_0001"


def test_v0_signature_alone_is_ignored() -> None:
    with pytest.raises(InvalidSignature, match="expected scheme v1"):
        parse_stripe_event(PAYLOAD, f"t={TIMESTAMP},v0={SIGNATURE}", SECRET, now=JUST_SIGNED)


def test_missing_header_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="missing"):
        parse_stripe_event(PAYLOAD, None, SECRET, now=JUST_SIGNED)


@pytest.mark.parametrize("header", ["garbage", f"v1={SIGNATURE}", f"t=soon,v1={SIGNATURE}", f"t=١٢,v1={SIGNATURE}"])
def test_garbled_header_is_rejected(header: str) -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(PAYLOAD, header, SECRET, now=JUST_SIGNED)


def test_non_ascii_signature_is_rejected_not_crashed() -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(PAYLOAD, f"t={TIMESTAMP},v1=é{SIGNATURE[1:]}", SECRET, now=JUST_SIGNED)


def test_empty_secret_rejects_everything() -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(PAYLOAD, sign(PAYLOAD, ""), "")


def test_signed_body_that_is_not_json_is_malformed() -> None:
    body = b"{not json"

    with pytest.raises(MalformedWebhook):
        parse_stripe_event(body, sign(body, SECRET), SECRET)


@pytest.mark.parametrize("body", [
    b"[1, 2]",
    b'{"object": "event", "type": "invoice.paid", "data": {"object": {}}}',
    b'{"id": "evt_1", "object": "event", "data": {"object": {}}}',
    b'{"id": "evt_1", "type": "invoice.paid", "data": {}}',
    b'{"id": "evt_1", "type": "invoice.paid", "data": {"object": "in_1"}}',
])
def test_signed_json_that_is_not_an_event_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse_stripe_event(body, sign(body, SECRET), SECRET)


@pytest.mark.parametrize("name", ["checkout_session_completed_subscription.json", "invoice_paid.json"])
def test_recorded_event_fixtures_parse_with_their_object(name: str) -> None:
    body = (FIXTURES / name).read_bytes()

    event = parse_stripe_event(body, sign(body, SECRET), SECRET)

    assert event.id.startswith("evt_") and event.object == json.loads(body)["data"]["object"]


def test_invoice_fixture_carries_its_subscription_under_parent() -> None:
    body = (FIXTURES / "invoice_paid.json").read_bytes()

    event = parse_stripe_event(body, sign(body, SECRET), SECRET)

    assert "subscription" not in event.object
    assert event.object["parent"]["subscription_details"]["subscription"] == "sub_1QcTestSubscription01"


@pytest.mark.parametrize(("payload", "header"), [
    (b"\xff\xfe not utf-8", HEADER),
    (PAYLOAD, f"t={TIMESTAMP},v1=\u00e9\u00e9"),
    (PAYLOAD, "t=,v1=abc"),
    (PAYLOAD, "v1=abc"),
])
def test_a_body_or_header_stripes_own_check_cannot_read_is_an_invalid_signature(payload: bytes, header: str) -> None:
    with pytest.raises(InvalidSignature):
        parse_stripe_event(payload, header, SECRET, now=JUST_SIGNED)
