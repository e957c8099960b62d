from __future__ import annotations

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
