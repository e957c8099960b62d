"""The dialog's server-side errors are written for people, never a library's message."""

from __future__ import annotations

import pytest

from weft.application.contact_details import email_address, phone_number
from weft.domain.errors import InvalidCheckout

INCOMPLETE = "That phone number doesn't look complete — include the area code"
DOMAIN = "The part after the @ doesn't look complete — it's usually something like example.org"


def phone_refusal(value: object) -> str:
    with pytest.raises(InvalidCheckout) as raised:
        phone_number(value, "US")
    assert raised.value.field == "phone"
    return str(raised.value)


def email_refusal(value: object) -> str:
    with pytest.raises(InvalidCheckout) as raised:
        email_address(value)
    assert raised.value.field == "email"
    return str(raised.value)


@pytest.mark.parametrize(("value", "message"), [
    ("12345", INCOMPLETE),
    ("415555012", INCOMPLETE),
    ("+44 20", INCOMPLETE),
    ("555-0123", INCOMPLETE),
    ("", "Enter your mobile phone number"),
    (None, "Enter your mobile phone number"),
    (4155550123, "Enter your mobile phone number"),
    ("abc", "That doesn't look like a phone number. Use digits, like (415) 555-0123"),
    ("+999 1234567", "We don't recognise that country code. Start with + and the country code (like +44), "
                     "or leave it out for a US number"),
    ("+1 415 555 012345678", "That phone number has too many digits. Check it for a typo"),
    ("+1415555012399999999", "That phone number has too many digits. Check it for a typo"),
    ("+1 123 555 0123", "That isn't a phone number in use. Check the area code and the digits"),
])
def test_a_refused_phone_number_is_explained_for_people(value: object, message: str) -> None:
    assert phone_refusal(value) == message


@pytest.mark.parametrize(("value", "message"), [
    ("jo@example", DOMAIN),
    ("jo@123.45.67.89", DOMAIN),
    ("jo", "An email address needs an @, like name@example.org"),
    ("@example.org", "Add the part of your email address before the @"),
    ("jo example@example.org", "Email addresses can't contain spaces"),
    ("jo,x@example.org", "That email address has a character email addresses can't contain. Check it for a typo"),
    ("jo@example..org", "That email address has a period where one can't go. Check it for a typo"),
    ("jo.@example.org", "That email address has a period where one can't go. Check it for a typo"),
    ("jo@-example.org", "That email address has a hyphen where one can't go. Check it for a typo"),
    ("jo@[1.2.3.4]", "That doesn't look like an email address. Check it for a typo"),
    ("", "Enter your email address, like name@example.org"),
    (None, "Enter your email address, like name@example.org"),
])
def test_a_refused_email_address_is_explained_for_people(value: object, message: str) -> None:
    assert email_refusal(value) == message


@pytest.mark.parametrize("value", ["12345", "abc", "+999 1234567", "+1 123 555 0123"])
def test_no_phone_refusal_repeats_the_library_message(value: str) -> None:
    message = phone_refusal(value)
    assert "not a valid number" not in message and "(1)" not in message and value not in message


def test_an_accepted_email_is_normalised_and_lower_cased() -> None:
    assert email_address(" Jo@Example.ORG ") == "jo@example.org"


def test_an_accepted_phone_is_in_e164() -> None:
    assert phone_number("(415) 555-0123", "US").e164 == "+14155550123"
