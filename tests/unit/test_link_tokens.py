from __future__ import annotations

import pytest

from tests.fakes import FixedClock
from weft.application.link_tokens import LinkTokens
from weft.domain.phone import PhoneNumber

PHONE = PhoneNumber("+14155550123")
OTHER = PhoneNumber("+14155550199")
TTL = 3600


class Harness:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.links = LinkTokens("secret", TTL, self.clock)


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_token_verifies_for_the_phone_it_was_issued_to(h: Harness) -> None:
    assert h.links.verify(h.links.issue(PHONE), PHONE)


def test_a_token_fails_for_another_phone(h: Harness) -> None:
    assert not h.links.verify(h.links.issue(PHONE), OTHER)


def test_a_token_signed_with_another_secret_fails(h: Harness) -> None:
    token = LinkTokens("other secret", TTL, h.clock).issue(PHONE)
    assert not h.links.verify(token, PHONE)


def test_a_tampered_signature_fails(h: Harness) -> None:
    token = h.links.issue(PHONE)
    flipped = "A" if token[-1] != "A" else "B"
    assert not h.links.verify(token[:-1] + flipped, PHONE)


def test_a_pushed_back_expiry_fails(h: Harness) -> None:
    expires, _, mac = h.links.issue(PHONE).partition(".")
    assert not h.links.verify(f"{int(expires, 16) + 86400:x}.{mac}", PHONE)


@pytest.mark.parametrize("token", [None, "", "garbage", "zz.yy", ".", "ffffffffff.", "ffffffffff.not-the-mac"])
def test_garbage_fails(h: Harness, token: str | None) -> None:
    assert not h.links.verify(token, PHONE)


def test_a_non_ascii_signature_fails_instead_of_raising(h: Harness) -> None:
    expires, _, _ = h.links.issue(PHONE).partition(".")
    assert not h.links.verify(f"{expires}.é", PHONE)


def test_a_token_still_verifies_at_its_expiry(h: Harness) -> None:
    token = h.links.issue(PHONE)
    h.clock.advance(TTL)
    assert h.links.verify(token, PHONE)


def test_a_token_fails_after_it_expires(h: Harness) -> None:
    token = h.links.issue(PHONE)
    h.clock.advance(TTL + 1)
    assert not h.links.verify(token, PHONE)
