from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import attrs
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from tests.integration.loopback import Canned
from tests.integration.loopback_resend import LoopbackResend, resend_error
from weft.adapters.resend_email import ResendEmailSender
from weft.adapters.smtp_email import SmtpEmailSender
from weft.domain.messages import OutboundEmail

SENDER = "Weft <hello@weft.example>"
RESEND_KEY = "re_test_0123456789abcdef"
EMAIL = OutboundEmail(
    id="5f0c2a4e-welcome",
    to="jane@example.org",
    subject="Welcome to the community",
    text="Hi Jane, welcome aboard.",
    html="<p>Hi Jane, <b>welcome</b> aboard.</p>",
)


@attrs.define
class Inbox:
    """An aiosmtpd handler: keeps accepted envelopes, or answers RCPT with a canned reply."""

    rcpt_reply: str | None = None
    envelopes: list[Envelope] = attrs.field(factory=list)
    logins: list[tuple[bytes, bytes]] = attrs.field(factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"smtp-secret", handled=False)

    def received(self) -> EmailMessage:
        message = message_from_bytes(self.envelopes[0].original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_smtp(inbox: Inbox) -> Controller:
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    return controller


@pytest.fixture
def smtp_servers() -> Iterator[list[Controller]]:
    controllers: list[Controller] = []
    yield controllers
    for controller in controllers:
        controller.stop()


def smtp_sender(
    port: int, username: str | None = None, password: str | None = None, timeout: float = 5
) -> SmtpEmailSender:
    return SmtpEmailSender(
        "127.0.0.1", port, username, password, use_tls=False, start_tls=False, sender=SENDER, timeout=timeout
    )


def serve(smtp_servers: list[Controller], inbox: Inbox) -> int:
    controller = start_smtp(inbox)
    smtp_servers.append(controller)
    return int(controller.port)


async def test_smtp_delivers_the_envelope_and_headers_with_a_message_id_from_the_email_id(
    smtp_servers: list[Controller],
) -> None:
    inbox = Inbox()
    result = await smtp_sender(serve(smtp_servers, inbox)).send(EMAIL)
    received = inbox.received()
    assert result.accepted and result.provider_id == "<5f0c2a4e-welcome@weft>"
    assert (inbox.envelopes[0].mail_from, inbox.envelopes[0].rcpt_tos) == ("hello@weft.example", ["jane@example.org"])
    assert (received["From"], received["To"], received["Subject"]) == (SENDER, EMAIL.to, EMAIL.subject)
    assert received["Message-ID"] == "<5f0c2a4e-welcome@weft>"


async def test_smtp_sends_the_text_and_the_html_as_alternatives(smtp_servers: list[Controller]) -> None:
    inbox = Inbox()
    await smtp_sender(serve(smtp_servers, inbox)).send(EMAIL)
    received = inbox.received()
    parts = {part.get_content_type(): part.get_content().strip() for part in received.iter_parts()}
    assert received.get_content_type() == "multipart/alternative"
    assert parts == {"text/plain": EMAIL.text, "text/html": EMAIL.html}


async def test_smtp_logs_in_with_the_configured_credentials(smtp_servers: list[Controller]) -> None:
    inbox = Inbox()
    result = await smtp_sender(serve(smtp_servers, inbox), "weft", "smtp-secret").send(EMAIL)
    assert result.accepted
    assert inbox.logins == [(b"weft", b"smtp-secret")] and len(inbox.envelopes) == 1


async def test_smtp_rejected_credentials_are_a_permanent_failure_that_does_not_show_the_password(
    smtp_servers: list[Controller],
) -> None:
    result = await smtp_sender(serve(smtp_servers, Inbox()), "weft", "wrong-password").send(EMAIL)
    assert not result.accepted and not result.transient
    assert result.error is not None and "535" in result.error and "wrong-password" not in result.error


async def test_a_550_recipient_refusal_is_a_permanent_failure(smtp_servers: list[Controller]) -> None:
    inbox = Inbox(rcpt_reply="550 mailbox unavailable")
    result = await smtp_sender(serve(smtp_servers, inbox)).send(EMAIL)
    assert not result.accepted and not result.transient
    assert result.error is not None and "550 mailbox unavailable" in result.error
    assert inbox.envelopes == []


async def test_a_451_recipient_refusal_is_a_transient_failure(smtp_servers: list[Controller]) -> None:
    result = await smtp_sender(serve(smtp_servers, Inbox(rcpt_reply="451 try later"))).send(EMAIL)
    assert not result.accepted and result.transient
    assert result.error is not None and "451 try later" in result.error


async def test_a_refused_smtp_connection_is_a_transient_network_error() -> None:
    result = await smtp_sender(free_port()).send(EMAIL)
    assert not result.accepted and result.transient
    assert result.error is not None and result.error.startswith("network error")


async def test_an_smtp_server_that_never_greets_is_a_transient_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        result = await smtp_sender(silent.getsockname()[1], timeout=0.2).send(EMAIL)
    assert not result.accepted and result.transient
    assert result.error is not None and "Timeout" in result.error


@pytest.fixture
def resend() -> Iterator[LoopbackResend]:
    server = LoopbackResend()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def resend_sender(client: httpx.AsyncClient, url: str) -> ResendEmailSender:
    return ResendEmailSender(client, RESEND_KEY, SENDER, api_url=url)


async def test_resend_receives_the_email_in_its_wire_format(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    await resend_sender(http_client, resend.url).send(EMAIL)
    [request] = resend.sent()
    assert request.path == "/emails"
    assert request.headers["authorization"] == f"Bearer {RESEND_KEY}"
    assert request.headers["idempotency-key"] == EMAIL.id
    assert request.json() == {"from": SENDER, "to": [EMAIL.to], "subject": EMAIL.subject, "html": EMAIL.html,
                              "text": EMAIL.text}


async def test_resend_reports_its_email_id_as_the_provider_id(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    resend.answer_next(Canned(200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert result.accepted and result.provider_id == "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"


async def test_sending_the_same_email_twice_through_resend_yields_one_email_id(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    sender = resend_sender(http_client, resend.url)
    first, second = await sender.send(EMAIL), await sender.send(EMAIL)
    assert first.accepted and second.accepted and first.provider_id == second.provider_id


async def test_a_resend_429_is_transient_and_carries_retry_after(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    resend.answer_next(resend_error("error_rate_limit_429.json", **{"retry-after": "2"}))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert not result.accepted and result.transient and result.retry_after == 2.0
    assert result.error is not None and "rate_limit_exceeded" in result.error


async def test_a_resend_422_validation_error_is_permanent_with_its_message(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    resend.answer_next(resend_error("error_validation_422.json"))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert not result.accepted and not result.transient
    assert result.error is not None and result.error.startswith("HTTP 422 validation_error: Invalid `to` field.")


async def test_a_resend_500_is_transient(resend: LoopbackResend, http_client: httpx.AsyncClient) -> None:
    resend.answer_next(resend_error("error_internal_server_500.json"))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert not result.accepted and result.transient and result.retry_after is None


async def test_a_resend_409_for_a_request_still_in_progress_is_transient(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    resend.answer_next(resend_error("error_concurrent_idempotent_requests_409.json", **{"retry-after": "1"}))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert not result.accepted and result.transient and result.retry_after == 1.0


async def test_a_resend_409_for_a_reused_idempotency_key_is_permanent(
    resend: LoopbackResend, http_client: httpx.AsyncClient
) -> None:
    sender = resend_sender(http_client, resend.url)
    await sender.send(EMAIL)
    result = await sender.send(attrs.evolve(EMAIL, subject="A different subject"))
    assert not result.accepted and not result.transient
    assert result.error is not None and "invalid_idempotent_request" in result.error


async def test_a_resend_error_never_shows_the_api_key(resend: LoopbackResend, http_client: httpx.AsyncClient) -> None:
    echoed = {"statusCode": 403, "name": "invalid_api_key", "message": f"API key {RESEND_KEY} is invalid"}
    resend.answer_next(Canned(403, echoed))
    result = await resend_sender(http_client, resend.url).send(EMAIL)
    assert not result.accepted and result.error is not None and RESEND_KEY not in result.error


async def test_an_unreachable_resend_is_a_transient_network_error(http_client: httpx.AsyncClient) -> None:
    result = await resend_sender(http_client, f"http://127.0.0.1:{free_port()}").send(EMAIL)
    assert not result.accepted and result.transient
    assert result.error == "network error: ConnectError"
