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
    reply_route: str | None = None
    """Where the provider wants the reply to this text sent (a conversation, a channel, the number that was
    texted), opaque outside that provider's adapter; None: the provider's default sender."""
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
    THANK_YOU = "thank_you"
    """A member's later gift or new plan, thanked (the welcome goes once)."""
    MEMBERSHIP_LINK = "membership_link"
    MEMBERSHIP_INFO = "membership_info"
    """The answer to MEMBERSHIP from a number with no plan to change."""
    SENT_BY_PROVIDER = "sent_by_provider"
    """Sent by the provider's own automations (Bird Flow Builder) and only recorded here, by the provider sync."""


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
    MessageKind.MEMBERSHIP_LINK, MessageKind.MEMBERSHIP_INFO,
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
    reply_route: str | None = None
    """The inbound text's reply route (InboundSms.reply_route) when this answers one."""
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
    opted_out: bool = False
    """Refused because the person opted out at the provider (texted STOP to it directly): record the opt-out."""


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


class DeliveryState(enum.Enum):
    """What the provider reported about a sent text after accepting it."""

    ACCEPTED = "accepted"
    SENT = "sent"
    """Handed to the carrier."""
    DELIVERED = "delivered"
    """The carrier confirmed it reached the phone."""
    UNDELIVERED = "undelivered"
    """The carrier could not deliver it."""
    FAILED = "failed"
    """The provider could not send it."""

    @property
    def rank(self) -> int:
        """Receipts arrive out of order: a state replaces the recorded one only when its rank is higher, so a
        late `sent` never overwrites `delivered`, and the first final state stays."""
        return _RANKS[self]

    @property
    def final(self) -> bool:
        return self.rank == 2

    @property
    def failed(self) -> bool:
        return self in (DeliveryState.UNDELIVERED, DeliveryState.FAILED)


_RANKS = {DeliveryState.ACCEPTED: 0, DeliveryState.SENT: 1, DeliveryState.DELIVERED: 2,
          DeliveryState.UNDELIVERED: 2, DeliveryState.FAILED: 2}


@attrs.frozen
class DeliveryReceipt:
    """A provider's report on a text it accepted, matched by its id (or, where the provider echoes it, by our
    outbox key in `reference`)."""

    provider_id: str
    state: DeliveryState
    at: datetime | None = None
    error_code: str | None = None
    reference: str | None = None


@attrs.frozen
class ProviderSentSms:
    """A text the provider's own automations sent to a number, found by the provider sync."""

    provider_id: str
    to: PhoneNumber
    text: str
    sent_at: datetime | None = None
    reference: str | None = None
    """Our outbox key when the text is one Weft sent itself."""

    def as_history(self) -> OutboundSms:
        """This text as a row of its number's message history (never sent by us: it is recorded as sent)."""
        return OutboundSms(id=outbox_key("provider", self.provider_id), to=self.to, text=self.text,
                           kind=MessageKind.SENT_BY_PROVIDER)
