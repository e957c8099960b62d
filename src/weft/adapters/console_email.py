from __future__ import annotations

import itertools
import logging

from weft.domain.messages import OutboundEmail, SendResult
from weft.domain.phone import mask_phones_in

log = logging.getLogger("weft.email.console")


def mask_email(address: str) -> str:
    """Keep the first character of the local part and the whole domain: 'jane@example.org' -> 'j***@example.org'."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


class ConsoleEmailSender:
    """The embedded default: logs each email (address and phone numbers masked) and reports it sent."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    async def send(self, email: OutboundEmail) -> SendResult:
        subject, text = mask_phones_in(email.subject), mask_phones_in(email.text)
        log.info("Email to %s — %s\n%s", mask_email(email.to), subject, text)
        return SendResult(accepted=True, provider_id=f"console-email-{next(self._counter)}")
