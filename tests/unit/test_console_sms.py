from __future__ import annotations

import logging

import pytest

from weft.adapters.console_sms import ConsoleSmsSender
from weft.domain.messages import MessageKind, OutboundSms
from weft.domain.phone import PhoneNumber


async def test_the_console_sender_logs_the_message_masked_and_reports_it_sent(caplog: pytest.LogCaptureFixture) -> None:
    message = OutboundSms("o1", PhoneNumber("+14155550123"), "Click: https://x/?phone=%2B14155550123", MessageKind.HELP)
    with caplog.at_level(logging.INFO):
        result = await ConsoleSmsSender().send(message)
    assert result.accepted and result.provider_id == "console-1"
    assert caplog.messages == ["SMS to +*******0123: Click: https://x/?phone=%2B*******0123"]
