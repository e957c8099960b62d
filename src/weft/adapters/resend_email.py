from __future__ import annotations

from typing import Any

import httpx

from weft.adapters.json_bodies import response_object, retry_after
from weft.domain.messages import OutboundEmail, SendResult

DEFAULT_RESEND_API_URL = "https://api.resend.com"

# Resend's 409 for a request still in flight under the same key: the first attempt may yet succeed, so try again.
_RETRYABLE_CONFLICT = "concurrent_idempotent_requests"


class ResendEmailSender:
    """Resend's POST /emails with our email id as the Idempotency-Key, so a retried send is delivered once."""

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, sender: str, api_url: str = DEFAULT_RESEND_API_URL
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._sender = sender
        self._url = f"{api_url.rstrip('/')}/emails"

    def __repr__(self) -> str:
        return f"ResendEmailSender(url={self._url!r}, sender={self._sender!r})"

    async def send(self, email: OutboundEmail) -> SendResult:
        headers = {"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": email.id}
        try:
            response = await self._client.post(self._url, json=self._body(email), headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(accepted=False, error=f"network error: {type(exc).__name__}", transient=True)
        return self._result(response)

    def _body(self, email: OutboundEmail) -> dict[str, Any]:
        return {
            "from": self._sender,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
        }

    def _result(self, response: httpx.Response) -> SendResult:
        body = response_object(response)
        if response.is_success:
            return SendResult(accepted=True, provider_id=body.get("id"))
        error = self._redact(_error_text(response, body))
        if _is_transient(response.status_code, body):
            return SendResult(accepted=False, error=error, transient=True, retry_after=retry_after(response))
        return SendResult(accepted=False, error=error)

    def _redact(self, text: str) -> str:
        # Belt and braces: an error body or proxy page that echoes the Authorization header must not leak the key.
        return text.replace(self._api_key, "***") if self._api_key else text


def _is_transient(status: int, body: dict[str, Any]) -> bool:
    return status == 429 or status >= 500 or (status == 409 and body.get("name") == _RETRYABLE_CONFLICT)


def _error_text(response: httpx.Response, body: dict[str, Any]) -> str:
    if "message" in body:
        return f"HTTP {response.status_code} {body.get('name', 'error')}: {str(body['message'])[:300]}"
    return f"HTTP {response.status_code}: {response.text[:300]}"
