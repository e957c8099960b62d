"""A sign-up's email and phone, checked, with every problem said the way a person would say it: the libraries'
own messages ("phone number '12345' is not a valid number") never reach the page."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException
from phonenumbers.phonenumberutil import ValidationResult

from weft.application.phone_numbers import normalise_phone
from weft.domain.errors import InvalidCheckout, InvalidPhoneNumber
from weft.domain.phone import PhoneNumber

PHONE_MISSING = "Enter your mobile phone number"
PHONE_NOT_A_NUMBER = "That doesn't look like a phone number. Use digits, like (415) 555-0123"
PHONE_INCOMPLETE = "That phone number doesn't look complete — include the area code"
PHONE_TOO_LONG = "That phone number has too many digits. Check it for a typo"
PHONE_WRONG_LENGTH = "That phone number doesn't have the right number of digits for its country. Check it for a typo"
PHONE_NOT_IN_USE = "That isn't a phone number in use. Check the area code and the digits"
PHONE_COUNTRY = ("We don't recognise that country code. Start with + and the country code (like +44), "
                 "or leave it out for a {region} number")

EMAIL_MISSING = "Enter your email address, like name@example.org"
EMAIL_FALLBACK = "That doesn't look like an email address. Check it for a typo"
EMAIL_PROBLEMS = (
    ("must have an @-sign", "An email address needs an @, like name@example.org"),
    ("something before the @-sign", "Add the part of your email address before the @"),
    ("should have a period", "The part after the @ doesn't look complete — it's usually something like example.org"),
    ("top-level domain", "The part after the @ doesn't look complete — it's usually something like example.org"),
    ("SPACE", "Email addresses can't contain spaces"),
    ("invalid characters", "That email address has a character email addresses can't contain. Check it for a typo"),
    ("period", "That email address has a period where one can't go. Check it for a typo"),
    ("hyphen", "That email address has a hyphen where one can't go. Check it for a typo"),
    ("too long", "That email address is too long"),
)
"""Fragments of email-validator's messages, in the order they are tried, and what a person is told instead."""


def email_address(value: object) -> str:
    """The address, normalised and lower-cased; InvalidCheckout("email", <a sentence for people>) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCheckout("email", EMAIL_MISSING)
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidCheckout("email", email_problem(str(exc))) from None


def email_problem(library_message: str) -> str:
    """What to tell a person for one of email-validator's messages."""
    for fragment, sentence in EMAIL_PROBLEMS:
        if fragment in library_message:
            return sentence
    return EMAIL_FALLBACK


def phone_number(value: object, region: str) -> PhoneNumber:
    """The number in E.164; InvalidCheckout("phone", <a sentence for people>) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCheckout("phone", PHONE_MISSING)
    try:
        return normalise_phone(value, region)
    except InvalidPhoneNumber:
        raise InvalidCheckout("phone", phone_problem(value.strip(), region)) from None


def phone_problem(text: str, region: str) -> str:
    """Why phonenumbers refuses `text`, said for people."""
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _parse_problem(exc.error_type, region)
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    return {
        ValidationResult.INVALID_COUNTRY_CODE: PHONE_COUNTRY.format(region=region),
        ValidationResult.TOO_SHORT: PHONE_INCOMPLETE,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: PHONE_INCOMPLETE,
        ValidationResult.TOO_LONG: PHONE_TOO_LONG,
        ValidationResult.INVALID_LENGTH: PHONE_WRONG_LENGTH,
    }.get(reason, PHONE_NOT_IN_USE)


def _parse_problem(error_type: int, region: str) -> str:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: PHONE_COUNTRY.format(region=region),
        NumberParseException.TOO_SHORT_AFTER_IDD: PHONE_INCOMPLETE,
        NumberParseException.TOO_SHORT_NSN: PHONE_INCOMPLETE,
        NumberParseException.TOO_LONG: PHONE_TOO_LONG,
    }.get(error_type, PHONE_NOT_A_NUMBER)
