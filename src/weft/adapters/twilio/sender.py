"""Twilio Programmable Messaging sender: the Messages resource, form-encoded, HTTP Basic auth."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode

import httpx

from weft.adapters.json_bodies import response_object, retry_after
from weft.domain.messages import Lookup, LookupResult, OutboundSms, SendResult

DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

THROTTLED = frozenset({20429})
"""Too many concurrent requests: never processed, safe to send again."""
UNSUBSCRIBED = 21610
"""The person texted STOP to Twilio: Twilio refuses every send to them until they text START."""
INVALID_NUMBER = frozenset({21211, 21614})
"""Not a valid number, or not a mobile number: no send to it will ever work."""


def twilio_route(our_number: str | None) -> str | None:
    """The reply route of a text Twilio delivered: the number of ours the person texted."""
    return urlencode({"from": our_number}) if our_number else None


class TwilioSmsSender:
    """Sends through a Messaging Service when one is configured (its sender pool and Advanced Opt-Out apply),
    else from the number the person texted, else from the configured number; asks for status callbacks."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str = "",
        from_number: str = "",
        status_callback: str | None = None,
        api_url: str = DEFAULT_TWILIO_API_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._service, self._from = messaging_service_sid, from_number
        self._status_callback = status_callback
        self._timeout = timeout

    async def send(self, message: OutboundSms) -> SendResult:
        try:
            response = await self._client.post(self._url, data=self._form(message), auth=self._auth,
                                               headers={"Accept": "application/json"}, timeout=self._timeout)
        except httpx.HTTPError as exc:
            # The request may have reached Twilio before the connection failed.
            return SendResult(accepted=False, error=f"network error: {type(exc).__name__}", transient=True,
                              maybe_delivered=True)
        return _result(response)

    async def lookup(self, message: OutboundSms) -> LookupResult:
        """Twilio keeps no id of ours on a message, so a send a crash left in doubt cannot be matched: UNKNOWN,
        and the pipeline sends it again marked as a possible duplicate."""
        return LookupResult(Lookup.UNKNOWN, error="Twilio messages carry no reference of ours to look up")

    def _form(self, message: OutboundSms) -> dict[str, str]:
        form = {"To": message.to.e164, "Body": message.text}
        if self._service:
            form["MessagingServiceSid"] = self._service
        else:
            route = parse_qs(message.reply_route or "").get("from", [None])[0]
            form["From"] = route or self._from
        if self._status_callback:
            form["StatusCallback"] = self._status_callback
        return form


def _result(response: httpx.Response) -> SendResult:
    body = response_object(response)
    if response.is_success:
        sid = body.get("sid")
        return SendResult(accepted=True, provider_id=sid if isinstance(sid, str) else None)
    code = body.get("code")
    error = f"HTTP {response.status_code}: Twilio {code}: {str(body.get('message', response.text))[:300]}"
    if response.status_code == 429 or code in THROTTLED:
        return SendResult(accepted=False, error=error, transient=True, retry_after=retry_after(response),
                          throttled=True)
    if response.status_code >= 500:
        return SendResult(accepted=False, error=error, transient=True, retry_after=retry_after(response))
    if code == UNSUBSCRIBED:
        return SendResult(accepted=False, error=error, opted_out=True)
    if code in INVALID_NUMBER:
        return SendResult(accepted=False, error=f"{error} (this number cannot receive texts)")
    return SendResult(accepted=False, error=error)
