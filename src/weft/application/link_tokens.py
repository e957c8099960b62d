from __future__ import annotations

import base64
import hashlib
import hmac

from weft.application.ports import Clock
from weft.domain.phone import PhoneNumber

MAX_EXPIRY_DIGITS = 12
"""Hex digits of an expiry in seconds: 12 reach far past any TTL."""


class LinkTokens:
    """Signed tokens that bind a landing-page link to the phone it was texted to, until they expire."""

    def __init__(self, secret: str, ttl_seconds: int, clock: Clock) -> None:
        self._key = secret.encode()
        self._ttl = ttl_seconds
        self._clock = clock

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(self, phone: PhoneNumber) -> str:
        expires = int(self._clock.now().timestamp()) + self._ttl
        return f"{expires:x}.{self._mac(phone, expires)}"

    def verify(self, token: str | None, phone: PhoneNumber) -> bool:
        """True when the token was issued for this phone and has not expired."""
        expires_hex, _, mac = (token or "").partition(".")
        if not 0 < len(expires_hex) <= MAX_EXPIRY_DIGITS or not expires_hex.isascii() or not mac.isascii():
            return False  # not one of ours; a huge number would also fail when turned into text for the MAC
        try:
            expires = int(expires_hex, 16)
        except ValueError:
            return False
        if expires < self._clock.now().timestamp():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(phone, expires).encode())

    def _mac(self, phone: PhoneNumber, expires: int) -> str:
        digest = hmac.new(self._key, f"{phone.e164}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()
