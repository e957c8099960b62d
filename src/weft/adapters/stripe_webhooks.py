"""Stripe webhooks: verify the Stripe-Signature header on the raw body, then read the event into a PaymentEvent."""

from __future__ import annotations

import time
from typing import Any

import stripe

from weft.adapters.json_bodies import load_object
from weft.adapters.untrusted import identifier
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
    """Raise InvalidSignature unless stripe-python's own check (`WebhookSignature.verify_header`: some v1 entry is
    the HMAC of "t.body") passes and t is not older than tolerance (checked here against `now`, so it can be
    tested; as stripe-python, only old timestamps are refused, and a tolerance of 0 turns the check off)."""
    if not secret.strip():
        raise InvalidSignature("no Stripe webhook secret configured")
    if not signature_header:
        raise InvalidSignature("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance=0)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(f"Stripe-Signature does not match: {exc.user_message or exc}") from None
    except (UnicodeError, TypeError, ValueError):  # a body that is not UTF-8, a signature that is not ASCII
        raise InvalidSignature("Stripe-Signature does not match the payload") from None
    timestamp = _timestamp(signature_header)
    current = time.time() if now is None else now
    if tolerance and timestamp < current - tolerance:
        raise InvalidSignature(f"Stripe-Signature timestamp {timestamp} is older than {tolerance} s")


def _timestamp(header: str) -> int:
    """The `t=` of a header stripe-python has verified (it signs that timestamp)."""
    values = [value.strip() for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"]
    if not values or not values[0].isascii() or not values[0].isdigit():
        raise InvalidSignature("Stripe-Signature header has no valid timestamp")
    return int(values[0])


def _event(body: dict[str, Any]) -> PaymentEvent:
    """The id, type and data.object of an event body, or MalformedWebhook."""
    event_id, event_type, data = body.get("id"), body.get("type"), body.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise MalformedWebhook("Stripe event lacks an id or a type")
    try:
        identifier(event_id, "Stripe event id")
        identifier(event_type, "Stripe event type", max_chars=64)
    except ValueError as exc:
        raise MalformedWebhook(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedWebhook(f"Stripe event {event_id} has no data.object")
    return PaymentEvent(id=event_id, type=event_type, object=data["object"])
