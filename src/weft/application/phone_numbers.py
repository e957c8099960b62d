from __future__ import annotations

import re

import phonenumbers
from phonenumbers import timezone

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


_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_NANP = re.compile(r"\+1[2-9][0-9]{9}")
"""A North American number in E.164: ten digits after +1, the area code not starting with 0 or 1."""


def sender_phone(raw: str, default_region: str = "US") -> PhoneNumber:
    """The number a provider says a text came from. A number delivered in international form (+ and digits) of a
    possible length is taken even where the numbering plan's metadata does not know its range yet: the carrier
    has just delivered a text from it, and refusing it would lose that text, a STOP among them. It is still put
    in canonical E.164 (a trunk 0 after the country code is dropped), so it matches the member's stored number.
    Any other form is parsed and validated as `normalise_phone` does."""
    text = raw.strip()
    if _NANP.fullmatch(text):
        return PhoneNumber(text)  # already canonical and of a possible length: parsing would return it unchanged
    if _E164.fullmatch(text):
        parsed = phonenumbers.parse(text)
        if phonenumbers.is_possible_number(parsed):
            return PhoneNumber(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return normalise_phone(text, default_region)


def time_zones(phone: PhoneNumber, fallback: str) -> tuple[str, ...]:
    """The time zones the number may be in (several for some numbers); `fallback` when the numbering plan
    does not say."""
    try:
        zones = timezone.time_zones_for_number(phonenumbers.parse(phone.e164))
    except phonenumbers.NumberParseException:
        return (fallback,)
    known = tuple(z for z in zones if z != timezone.UNKNOWN_TIMEZONE)
    return known or (fallback,)


def is_valid(phone: PhoneNumber) -> bool:
    """The stored number is still a valid number (numbering plans change)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(phone.e164)))
    except phonenumbers.NumberParseException:
        return False
