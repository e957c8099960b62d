from __future__ import annotations

import enum
from datetime import datetime

import attrs

from weft.domain.phone import PhoneNumber


@attrs.frozen
class InboundSms:
    """One text a person sent us, as any provider delivered it."""

    provider_id: str
    sender: PhoneNumber
    text: str
    conversation_id: str | None = None
    channel_id: str | None = None
    received_at: datetime | None = None


class MessageKind(enum.Enum):
    JOIN_LINK = "join_link"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    DOWNGRADE_CONFIRMATION = "downgrade_confirmation"
    HELP = "help"
    CONFIRMATION_REQUEST = "confirmation_request"
    WELCOME = "welcome"
    CARE = "care"
    PAYMENT_NOTICE = "payment_notice"


REPLY_KINDS = frozenset({
    MessageKind.JOIN_LINK, MessageKind.OPT_OUT_CONFIRMATION, MessageKind.OPT_IN_CONFIRMATION,
    MessageKind.DOWNGRADE_CONFIRMATION, MessageKind.HELP, MessageKind.CONFIRMATION_REQUEST,
})
"""Answers to something the number just did; every other kind needs standing consent."""


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


@attrs.frozen
class OutboundSms:
    """A text we mean to send; written to the outbox with the change that caused it."""

    id: str
    to: PhoneNumber
    text: str
    kind: MessageKind
    conversation_id: str | None = None
    channel_id: str | None = None


@attrs.frozen
class SendResult:
    """What a provider said: accepted with its id, or refused (transient or permanent)."""

    accepted: bool
    provider_id: str | None = None
    error: str | None = None
    transient: bool = False
    retry_after: float | None = None


@attrs.frozen
class OutboundEmail:
    """An email we mean to send; `id` doubles as the provider idempotency key."""

    id: str
    to: str
    subject: str
    text: str
    html: str
