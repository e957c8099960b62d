"""Twilio's form-encoded webhooks: an incoming text, a status callback for a text we sent, and the
X-Twilio-Signature check (twilio's own RequestValidator)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from weft.adapters.twilio.sender import twilio_route
from weft.adapters.untrusted import MAX_ID_CHARS, problem_in, sms_text
from weft.application.phone_numbers import sender_phone
from weft.domain.errors import InvalidPhoneNumber, InvalidSignature, MalformedWebhook
from weft.domain.messages import DeliveryReceipt, DeliveryState, InboundSms

Fields = ImmutableMultiDict[str, str]

STATES = {
    "sending": DeliveryState.SENT, "sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED, "undelivered": DeliveryState.UNDELIVERED, "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED, "queued": DeliveryState.ACCEPTED, "accepted": DeliveryState.ACCEPTED,
    "scheduled": DeliveryState.ACCEPTED,
}
"""Twilio's MessageStatus values for an outbound text, as delivery states (`partially_delivered` and anything new
is left as it was)."""


def verify_twilio_signature(auth_token: str, url: str, fields: Fields, signature: str | None) -> None:
    """InvalidSignature unless X-Twilio-Signature is Twilio's HMAC-SHA1 of `url` (the public URL Twilio called)
    and every form parameter, with the account's auth token."""
    if not signature:
        raise InvalidSignature("missing X-Twilio-Signature header")
    if not RequestValidator(auth_token).validate(url, fields, signature):
        raise InvalidSignature("X-Twilio-Signature does not match this request")


def form_fields(body: bytes) -> Fields:
    """The form parameters, every value of a repeated one kept (the signature covers them all)."""
    return ImmutableMultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def parse_twilio_inbound(fields: Fields, default_region: str, received_at: datetime) -> InboundSms:
    """The text a Twilio messaging webhook carries (Twilio sends no time: it is the time it arrived)."""
    sid = _id(fields, "MessageSid")
    raw = _required(fields, "From").strip()
    if problem := problem_in(raw):
        raise MalformedWebhook(f"From {problem}")
    try:
        sender = sender_phone(raw, default_region)
    except InvalidPhoneNumber as exc:
        raise MalformedWebhook(f"From: {exc}") from exc
    to = fields.get("To", "").strip()
    route = twilio_route(to) if to and not problem_in(to) and len(to) <= 32 else None
    return InboundSms(provider_id=sid, sender=sender, text=sms_text(fields.get("Body", "")), reply_route=route,
                      received_at=received_at)


def parse_twilio_status(fields: Fields) -> DeliveryReceipt | None:
    """The delivery report a status callback carries; None for a status that says nothing new."""
    state = STATES.get(_required(fields, "MessageStatus").strip().lower())
    sid = _id(fields, "MessageSid")
    if state is None:
        return None
    code = fields.get("ErrorCode", "").strip()
    return DeliveryReceipt(provider_id=sid, state=state, error_code=code[:32] if code and code != "0" else None)


def _id(fields: Fields, name: str) -> str:
    value = _required(fields, name).strip()
    if len(value) > MAX_ID_CHARS or not value.isprintable():
        raise MalformedWebhook(f"{name} must be 1 to {MAX_ID_CHARS} printable characters")
    return value


def _required(fields: Fields, name: str) -> str:
    values: Sequence[str] = fields.getlist(name)
    if not values or not values[0].strip():
        raise MalformedWebhook(f"{name} is missing")
    if len(values) > 1:
        raise MalformedWebhook(f"{name} is given more than once")
    return values[0]
