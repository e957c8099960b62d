from __future__ import annotations

import logging

import httpx
import pytest

from weft.adapters.console_email import ConsoleEmailSender, mask_email
from weft.adapters.resend_email import ResendEmailSender
from weft.adapters.smtp_email import SmtpEmailSender
from weft.domain.messages import OutboundEmail

EMAIL = OutboundEmail(
    id="e1",
    to="jane@example.org",
    subject="Your link",
    text="Join: https://x/?phone=%2B14155550123 or call +14155550123",
    html="<p>Join</p>",
)


def test_an_email_address_is_masked_to_its_first_letter_and_domain() -> None:
    assert mask_email("jane@example.org") == "j***@example.org"


def test_a_string_without_an_at_sign_is_masked_entirely() -> None:
    assert mask_email("not-an-address") == "***"


async def test_the_console_email_sender_logs_the_email_masked_and_reports_it_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="weft.email.console"):
        result = await ConsoleEmailSender().send(EMAIL)
    assert result.accepted and result.provider_id == "console-email-1"
    assert caplog.messages == [
        "Email to j***@example.org — Your link\nJoin: https://x/?phone=%2B*******0123 or call +*******0123"
    ]


async def test_the_console_email_sender_numbers_its_provider_ids() -> None:
    sender = ConsoleEmailSender()
    await sender.send(EMAIL)
    assert (await sender.send(EMAIL)).provider_id == "console-email-2"


def test_the_smtp_sender_repr_hides_the_password() -> None:
    sender = SmtpEmailSender("smtp.example.org", 587, "weft", "hunter2-secret", False, True, "hello@weft.example")
    assert "hunter2-secret" not in repr(sender) and "smtp.example.org" in repr(sender)


async def test_the_resend_sender_repr_hides_the_api_key() -> None:
    async with httpx.AsyncClient() as client:
        sender = ResendEmailSender(client, "re_secret_key", "hello@weft.example")
        assert "re_secret_key" not in repr(sender)


async def test_an_email_whose_subject_would_inject_headers_is_refused_permanently_without_connecting() -> None:
    sender = SmtpEmailSender("127.0.0.1", 9, None, None, False, False, "hello@weft.example", timeout=0.1)
    result = await sender.send(OutboundEmail("e2", "jane@example.org", "Hi\r\nBcc: all@example.org", "t", "<p>t</p>"))
    assert not result.accepted and not result.transient
    assert result.error is not None and result.error.startswith("invalid email")
