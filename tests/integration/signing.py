"""Sign requests the way Bird does, so tests can send deliveries the app must accept."""

from __future__ import annotations

import base64
import hashlib
import hmac


def channels_headers(key: str, url: str, body: bytes, timestamp: str = "1735732800") -> dict[str, str]:
    message = timestamp.encode() + b"\n" + url.encode() + b"\n" + hashlib.sha256(body).digest()
    signature = base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()
    return {
        "messagebird-signature": signature,
        "messagebird-request-timestamp": timestamp,
        "content-type": "application/json",
    }


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature as Twilio computes it: HMAC-SHA1 over the URL followed by every parameter's name and
    value, by name (and value) order, keyed with the auth token; base64."""
    signed = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
