"""Stripe webhooks: verify the Stripe-Signature header on the raw body, then read the event into a PaymentEvent."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from weft.adapters.json_bodies import load_object
from weft.application.ports import PaymentEvent
from weft.domain.errors import InvalidSignature, MalformedWebhook

DEFAULT_TOLERANCE_SECONDS = 300


def parse_stripe_event(
    payload: bytes,
    signature_header: str | None,
    secret: str,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> PaymentEvent:
    """The event in a correctly signed, recent body; InvalidSignature or MalformedWebhook otherwise."""
    verify_stripe_signature(payload, signature_header, secret, now, tolerance)
    return _event(load_object(payload, "Stripe event"))


def verify_stripe_signature(
    payload: bytes,
    signature_header: str | None,
    secret: str,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise InvalidSignature unless some v1 signature is the HMAC of "t.body" and t is not older than tolerance."""
    if not secret.strip():
        raise InvalidSignature("no Stripe webhook secret configured")
    timestamp, signatures = _parse_header(signature_header)
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, signature.encode()) for signature in signatures):
        raise InvalidSignature("no Stripe-Signature v1 entry matches the payload")
    # As stripe-python: only old timestamps are refused (replays); a tolerance of 0 turns the check off.
    current = time.time() if now is None else now
    if tolerance and timestamp < current - tolerance:
        raise InvalidSignature(f"Stripe-Signature timestamp {timestamp} is older than {tolerance} s")


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    """The timestamp and the v1 signatures in a `t=…,v1=…,v0=…` header."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    pairs = [(key.strip(), value.strip()) for key, _, value in (item.partition("=") for item in header.split(","))]
    timestamps = [value for key, value in pairs if key == "t"]
    signatures = [value for key, value in pairs if key == "v1" and value]
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise InvalidSignature("Stripe-Signature header has no valid timestamp")
    if not signatures:
        raise InvalidSignature("Stripe-Signature header has no v1 signature")
    return int(timestamps[0]), signatures


def _event(body: dict[str, Any]) -> PaymentEvent:
    """The id, type and data.object of an event body, or MalformedWebhook."""
    event_id, event_type, data = body.get("id"), body.get("type"), body.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise MalformedWebhook("Stripe event lacks an id or a type")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedWebhook(f"Stripe event {event_id} has no data.object")
    return PaymentEvent(id=event_id, type=event_type, object=data["object"])
