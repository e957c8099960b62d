from __future__ import annotations

import phonenumbers

from weft.domain.errors import InvalidPhoneNumber
from weft.domain.phone import PhoneNumber


def normalise_phone(raw: str, default_region: str = "US") -> PhoneNumber:
    """Parse what a person or provider gave us into E.164, or raise InvalidPhoneNumber saying why."""
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"phone number {text!r} cannot be parsed: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"phone number {text!r} is not a valid number")
    return PhoneNumber(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
