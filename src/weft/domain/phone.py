from __future__ import annotations

import re

import attrs


@attrs.frozen
class PhoneNumber:
    """An E.164 number; build it through the application's normaliser, which validates."""

    e164: str

    def __str__(self) -> str:
        return self.e164

    @property
    def masked(self) -> str:
        return mask_phone(self.e164)


def mask_phone(text: str) -> str:
    """Hide all but the last four digits, keeping the leading '+' so logs stay readable."""
    digits = [c for c in text if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    return ("+" if text.startswith("+") else "") + "*" * (len(digits) - 4) + "".join(digits[-4:])


_PHONE_LIKE = re.compile(r"(?<![\w%])(\+|%2[Bb])?(\d{7,15})(?!\w)")


def mask_phones_in(text: str) -> str:
    """Mask every phone-like run of digits (plain, +, or URL-encoded %2B) inside free text such as a log line."""
    return _PHONE_LIKE.sub(lambda m: (m.group(1) or "") + "*" * (len(m.group(2)) - 4) + m.group(2)[-4:], text)
