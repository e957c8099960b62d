from __future__ import annotations

import enum
import hashlib
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


class Lane(enum.IntEnum):
    """Send order: a lower lane always goes first."""

    PRIORITY = 0
    """Answers to a member's own text (keyword replies, links, confirmations) and journey messages."""
    BROADCAST = 1
    """Messages sent to many at once (the monthly care message): they wait while anything else is due."""


BROADCAST_KINDS = frozenset({MessageKind.CARE})


def lane_of(kind: MessageKind) -> Lane:
    return Lane.BROADCAST if kind in BROADCAST_KINDS else Lane.PRIORITY


REPLY_KINDS = frozenset({
    MessageKind.JOIN_LINK, MessageKind.OPT_OUT_CONFIRMATION, MessageKind.OPT_IN_CONFIRMATION,
    MessageKind.DOWNGRADE_CONFIRMATION, MessageKind.HELP, MessageKind.CONFIRMATION_REQUEST,
})
"""Answers to something the number just did; every other kind needs standing consent."""


MAX_KEY_LENGTH = 64


def outbox_key(prefix: str, ident: str) -> str:
    """An idempotency key `prefix:ident`; an ident too long for the key column is replaced by its digest."""
    key = f"{prefix}:{ident}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{prefix}:#" + hashlib.sha256(ident.encode()).hexdigest()[: MAX_KEY_LENGTH - len(prefix) - 2]


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Refused for good by the provider."""
    SUPPRESSED = "suppressed"
    """Not sent: consent had changed by the time it was due (an opt-out wins)."""
    EXPIRED = "expired"
    """Not sent: its lifetime ran out while the provider kept failing (or, for a join link, the link expired)."""


@attrs.frozen
class OutboundSms:
    """A text we mean to send; written to the outbox with the change that caused it. `id` is its idempotency key
    (e.g. `reply:<inbound id>`, `welcome:<payment id>`, `care:2026-12:+14155550123`): one key, one text, ever."""

    id: str
    to: PhoneNumber
    text: str
    kind: MessageKind
    conversation_id: str | None = None
    channel_id: str | None = None
    journey_id: str | None = None
    """The journey whose SMS step this message is: its outcome is recorded on that step."""
    campaign_id: str | None = None
    expires_at: datetime | None = None
    """Dropped as expired when not sent by then (a join link whose link has expired)."""

    @property
    def lane(self) -> Lane:
        return lane_of(self.kind)


@attrs.frozen
class SendResult:
    """What a provider said: accepted with its id, or refused (transient or permanent)."""

    accepted: bool
    provider_id: str | None = None
    error: str | None = None
    transient: bool = False
    retry_after: float | None = None
    throttled: bool = False
    """The provider asked us to slow down (429): the lane pauses and the attempt does not count as a failure."""
    maybe_delivered: bool = False
    """The connection failed after the request may have reached the provider: ask it before sending again."""


class Lookup(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


@attrs.frozen
class LookupResult:
    """Whether the provider already has a message we may have sent before a crash."""

    state: Lookup
    provider_id: str | None = None
    error: str | None = None
    transient: bool = False
    """The provider could not answer now (outage, 429): ask again later rather than risk a double."""


@attrs.frozen
class OutboundEmail:
    """An email we mean to send; `id` doubles as the provider idempotency key."""

    id: str
    to: str
    subject: str
    text: str
    html: str
