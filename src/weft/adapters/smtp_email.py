from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from weft.domain.messages import OutboundEmail, SendResult


class SmtpEmailSender:
    """Sends through an SMTP relay; 4xx replies and connection faults are transient, 5xx replies permanent."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        use_tls: bool,
        start_tls: bool | None,
        sender: str,
        timeout: float = 10,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username or None
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._sender = sender
        self._envelope_from = parseaddr(sender)[1] or sender
        self._timeout = timeout

    def __repr__(self) -> str:
        return (
            f"SmtpEmailSender(host={self._host!r}, port={self._port}, username={self._username!r}, "
            f"sender={self._sender!r})"
        )

    async def send(self, email: OutboundEmail) -> SendResult:
        try:
            message = build_message(email, self._sender)
        except ValueError as exc:
            return SendResult(accepted=False, error=f"invalid email: {exc}")
        try:
            await aiosmtplib.send(
                message,
                sender=self._envelope_from,
                recipients=[email.to],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password if self._username else None,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _failure(exc)
        return SendResult(accepted=True, provider_id=message["Message-ID"])


def message_id(email: OutboundEmail) -> str:
    """The Message-ID for this email: derived from its id, so a resend after a crash is recognisably the same mail."""
    return f"<{email.id}@weft>"


def build_message(email: OutboundEmail, sender: str) -> EmailMessage:
    """A multipart/alternative message (plain text, then HTML); ValueError for header values that cannot be sent."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(email)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def _failure(exc: aiosmtplib.SMTPException | OSError) -> SendResult:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{refused.code} {refused.message}" for refused in exc.recipients)
        return SendResult(accepted=False, error=f"SMTP recipient refused: {detail}", transient=all(map(_is_4xx, codes)))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendResult(accepted=False, error=f"SMTP {exc.code}: {exc.message}", transient=_is_4xx(exc.code))
    if isinstance(exc, OSError):
        return SendResult(accepted=False, error=f"network error: {type(exc).__name__}: {exc}", transient=True)
    return SendResult(accepted=False, error=f"SMTP error: {type(exc).__name__}: {exc}")


def _is_4xx(code: int) -> bool:
    return 400 <= code <= 499
