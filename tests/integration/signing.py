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
