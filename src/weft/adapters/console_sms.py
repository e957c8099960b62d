from __future__ import annotations

import itertools
import logging

from weft.domain.messages import Lookup, LookupResult, OutboundSms, SendResult
from weft.domain.phone import mask_phones_in

log = logging.getLogger("weft.sms.console")


class ConsoleSmsSender:
    """The embedded default: logs each message (phone numbers masked) and reports it sent."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    async def send(self, message: OutboundSms) -> SendResult:
        log.info("SMS to %s: %s", message.to.masked, mask_phones_in(message.text))
        return SendResult(accepted=True, provider_id=f"console-{next(self._counter)}")

    async def lookup(self, message: OutboundSms) -> LookupResult:
        return LookupResult(Lookup.UNKNOWN, error="the console keeps no record of what it printed")
