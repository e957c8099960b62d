"""Bird (MessageBird) inbound SMS webhooks: map every payload format to InboundSms (signatures: bird_signatures)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import attrs

from weft.adapters.bird.sender import bird_route
from weft.adapters.bird.signatures import verify_bird_signature
from weft.adapters.json_bodies import load_object
from weft.adapters.untrusted import MAX_ID_CHARS, problem_in, sms_text
from weft.application.phone_numbers import normalise_phone, sender_phone
from weft.domain.errors import InvalidPhoneNumber, MalformedWebhook
from weft.domain.messages import DeliveryReceipt, DeliveryState, InboundSms, ProviderSentSms
from weft.domain.phone import PhoneNumber

Parsed = InboundSms | DeliveryReceipt | None
_Handler = Callable[[dict[str, Any], str], Parsed]

MAX_ROUTE_CHARS = 300
"""The reply_route columns' width."""

__all__ = ["channel_message", "parse_bird_payload", "verify_bird_signature"]


def parse_bird_payload(
    raw_body: bytes,
    content_type: str,
    query: Mapping[str, str],
    form: Mapping[str, str] | None,
    default_region: str = "US",
) -> Parsed:
    """The inbound SMS or the delivery report a Bird webhook carries, None for a valid event we ignore;
    MalformedWebhook otherwise."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if raw_body.strip() and _is_json(media_type, raw_body):
        return _checked(_parse_event(load_object(raw_body, strict_strings=False), default_region))
    fields = dict(query)
    if form is not None:
        fields.update(form)
    elif media_type == "application/x-www-form-urlencoded":
        fields.update(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
    return _checked(_parse_legacy(fields, default_region))


def _checked(sms: Parsed) -> Parsed:
    """Ids must fit the store's columns and be plain tokens: they end up in SQL rows and provider URLs. The text
    is cleaned and cut to what an SMS can carry (untrusted.sms_text)."""
    if not isinstance(sms, InboundSms):
        return sms
    _check_id("provider_id", sms.provider_id)
    text = sms_text(sms.text)
    return sms if text == sms.text else attrs.evolve(sms, text=text)


def _check_id(name: str, value: str | None) -> None:
    if value is not None and (len(value) > MAX_ID_CHARS or not value.isprintable() or not value.strip()):
        raise MalformedWebhook(f"{name} must be 1 to {MAX_ID_CHARS} printable characters")


def _route(channel_id: str | None, conversation_id: str | None) -> str | None:
    _check_id("channel_id", channel_id)
    _check_id("conversation_id", conversation_id)
    route = bird_route(channel_id, conversation_id)
    if route is not None and len(route) > MAX_ROUTE_CHARS:
        raise MalformedWebhook("channelId and conversationId are too long together")
    return route


def _is_json(media_type: str, body: bytes) -> bool:
    """Whether the body should be read as JSON: declared so, or undeclared/unknown and shaped like JSON."""
    if media_type.endswith("json"):
        return True
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    return body.lstrip()[:1] in (b"{", b"[")


def _parse_event(event: dict[str, Any], region: str) -> Parsed:
    """Dispatch a JSON webhook on its event (api.bird.com) or type (MessageBird, platform) name."""
    name = event.get("event", event.get("type"))
    if not isinstance(name, str):
        raise MalformedWebhook("body has neither an event nor a type field")
    handler = _EVENT_HANDLERS.get(name)
    return handler(event, region) if handler else None


def _channels_sms(event: dict[str, Any], region: str) -> InboundSms | None:
    """api.bird.com Channels sms.inbound."""
    if _get(event, "payload.body.type") not in (None, "text"):
        return None  # media-only messages carry no text a keyword could match
    return InboundSms(
        provider_id=_required(event, "payload.id"),
        sender=_phone(event, "payload.sender.contact.identifierValue", region),
        text=_required(event, "payload.body.text.text", allow_empty=True),
        # conversationId is undocumented here; used if Bird ever adds it
        reply_route=_route(_optional(event, "payload.channelId"), _optional(event, "payload.conversationId")),
        received_at=_timestamp(_get(event, "payload.createdAt")),
    )


def channel_message(item: dict[str, Any], region: str) -> InboundSms | ProviderSentSms | None:
    """A channel message from Bird's message list (the automation sync): a text a person sent us, a text sent
    to a person, or None for anything else (not a text). MalformedWebhook when a text lacks what it needs."""
    if _get(item, "body.type") not in (None, "text"):
        return None
    direction = item.get("direction")
    if direction == "incoming":
        checked = _checked(_channels_sms({"payload": item}, region))
        return checked if isinstance(checked, InboundSms) else None
    if direction != "outgoing":
        return None
    provider_id = _required(item, "id")
    _check_id("id", provider_id)
    reference = _optional(item, "reference")
    return ProviderSentSms(
        provider_id=provider_id,
        to=_phone(item, "receiver.contacts.0.identifierValue", region),
        text=sms_text(_required(item, "body.text.text", allow_empty=True)),
        sent_at=_timestamp(item.get("createdAt")),
        reference=reference if reference and len(reference) <= MAX_ID_CHARS else None,
    )


def _conversation_event(event: dict[str, Any], region: str) -> InboundSms | None:
    """api.bird.com Conversations conversation.created/updated: inbound only when the contact sent lastMessage."""
    conversation = event.get("payload")
    last = _get(conversation, "lastMessage")
    if not isinstance(conversation, dict) or not isinstance(last, dict) or not _sent_by_contact(conversation, last):
        return None
    phone_path = _conversation_phone_path(conversation, last)
    if _get(event, phone_path.rsplit(".", 1)[0] + ".identifierKey") not in (None, "phonenumber"):
        return None  # email conversations raise the same events; only phone contacts text us
    text_path = "payload.lastMessage.preview.text"
    if _get(last, "preview.text") is None and _get(last, "body.text.text") is not None:
        text_path = "payload.lastMessage.body.text.text"
    return InboundSms(
        provider_id=_required(event, "payload.lastMessage.id"),
        sender=_phone(event, phone_path, region),
        text=_required(event, text_path, allow_empty=True),
        reply_route=_route(_optional(event, "payload.channelId"), _optional(event, "payload.id")),
        received_at=_timestamp(last.get("createdAt")),
    )


def _sent_by_contact(conversation: dict[str, Any], last: dict[str, Any]) -> bool:
    """Whether lastMessage's sender is the contact rather than us, an agent or a flow."""
    sender = last.get("sender")
    if not isinstance(sender, dict):
        return False
    if sender.get("type") == "contact":
        return True
    contacts = [p for p in _featured_participants(conversation) if p.get("type") == "contact"]
    sender_value = _get(sender, "contact.identifierValue")
    return any(
        (sender.get("id") and p.get("id") == sender.get("id"))
        or (sender_value and _get(p, "contact.identifierValue") == sender_value)
        for p in contacts
    )


def _conversation_phone_path(conversation: dict[str, Any], last: dict[str, Any]) -> str:
    """Path of the contact's phone: on the sender when present, else on the featured contact participant."""
    if _get(last, "sender.contact.identifierValue") is not None:
        return "payload.lastMessage.sender.contact.identifierValue"
    for index, participant in enumerate(_featured_participants(conversation)):
        if participant.get("type") == "contact" and _get(participant, "contact.identifierValue") is not None:
            return f"payload.featuredParticipants.{index}.contact.identifierValue"
    return "payload.lastMessage.sender.contact.identifierValue"


def _featured_participants(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation's featured participants that are objects (non-objects are kept as {} to preserve indexes)."""
    participants = conversation.get("featuredParticipants")
    if not isinstance(participants, list):
        return []
    return [p if isinstance(p, dict) else {} for p in participants]


def _messagebird_message(event: dict[str, Any], region: str) -> InboundSms | None:
    """conversations.messagebird.com message.created: inbound only when the message direction is received."""
    if _get(event, "message.direction") != "received" or _get(event, "message.type") not in (None, "text"):
        return None
    phone_paths = ("contact.msisdn", "contact.identifierValue", "contact.phone")
    path = next((p for p in phone_paths if _get(event, p) not in (None, "")), None)
    if path is None:
        raise MalformedWebhook("contact.msisdn is missing")
    return InboundSms(
        provider_id=_required(event, "message.id"),
        sender=_phone(event, path, region, international=True),
        text=_required(event, "message.content.text", allow_empty=True),
        reply_route=_route(_optional(event, "message.channelId"),
                           _optional(event, "message.conversationId") or _optional(event, "conversation.id")),
        received_at=_timestamp(_get(event, "message.createdDatetime")),
    )


def _platform_sms(event: dict[str, Any], region: str) -> InboundSms:
    """{region}.platform.bird.com sms.received."""
    return InboundSms(
        provider_id=_required(event, "data.sms_id"),
        sender=_phone(event, "data.from", region),
        text=_required(event, "data.text", allow_empty=True),
        received_at=_timestamp(event.get("timestamp")),
    )


def _parse_legacy(fields: Mapping[str, str], region: str) -> InboundSms:
    """MessageBird VMN, short-code and Flow Builder callbacks: originator and text in the query or form."""
    originator = fields.get("originator", "").strip()
    text = next((fields[name] for name in ("body", "payload", "message") if name in fields), None)
    if not originator and text is None:
        raise MalformedWebhook("expected a JSON body or originator/body fields in the query string or form")
    if text is None:
        raise MalformedWebhook("body (or payload/message) field is missing")
    return InboundSms(
        provider_id=fields.get("id") or fields.get("mid") or _derived_id(originator, text, fields),
        sender=_phone(fields, "originator", region, international=True),
        text=text,
        received_at=_timestamp(fields.get("createdDatetime", "").replace(" ", "+")),  # unescaped '+' reads as a space
    )


def _derived_id(originator: str, text: str, fields: Mapping[str, str]) -> str:
    """A dedupe key for callbacks without an id: from the send time when there is one; otherwise unique, because
    Flow Builder forwards carry neither id nor time and a person may well text STOP twice."""
    sent_at = fields.get("createdDatetime") or fields.get("receive_datetime")
    if not sent_at:
        return f"legacy-{uuid.uuid4().hex}"
    return "legacy-" + hashlib.sha256("\x1f".join((originator, text, sent_at)).encode()).hexdigest()


def _get(node: Any, path: str) -> Any:
    """The value at a dotted path (digits index lists), None when any step is absent."""
    for key in path.split("."):
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def _required(root: Any, path: str, allow_empty: bool = False) -> str:
    """The string (or number, as text) at path, or MalformedWebhook naming the path."""
    value = _get(root, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise MalformedWebhook(f"{path} is missing")
    return value


def _optional(root: Any, path: str) -> str | None:
    """The non-empty string at path, else None."""
    value = _get(root, path)
    return value if isinstance(value, str) and value else None


def _phone(root: Any, path: str, region: str, international: bool = False) -> PhoneNumber:
    """The sender's phone at path (see sender_phone); international numbers arrive as bare digits and get
    their '+' back."""
    raw = _required(root, path).strip()
    if problem := problem_in(raw):
        raise MalformedWebhook(f"{path} {problem}")
    delivered_international = raw.startswith("+")
    if international and not delivered_international:
        raw = "+" + raw
    try:
        # A '+' we added is our guess, so that number is validated in full.
        return sender_phone(raw, region) if delivered_international else normalise_phone(raw, region)
    except InvalidPhoneNumber as exc:
        raise MalformedWebhook(f"{path}: {exc}") from exc


def _timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp as a datetime, None when absent or unparseable (it is informative only)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_CHANNEL_STATES = {
    "accepted": DeliveryState.ACCEPTED, "processing": DeliveryState.ACCEPTED, "scheduled": DeliveryState.ACCEPTED,
    "sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED, "sending_failed": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED, "rejected": DeliveryState.FAILED, "delivery_failed": DeliveryState.UNDELIVERED,
    "undelivered": DeliveryState.UNDELIVERED, "expired": DeliveryState.UNDELIVERED,
}
"""Bird's message statuses as delivery states; statuses not listed (Bird may add some) change nothing."""


def _channels_status(event: dict[str, Any], region: str) -> DeliveryReceipt | None:
    """api.bird.com Channels sms.outbound: a status change of a text we sent (ours carry our key as reference)."""
    state = _CHANNEL_STATES.get(str(_get(event, "payload.status")).lower())
    if state is None:
        return None
    return _receipt(_required(event, "payload.id"), state, _get(event, "payload.lastStatusAt"),
                    _get(event, "payload.failure.code") or _get(event, "payload.reason") or None,
                    _optional(event, "payload.reference"))


def _platform_status(event: dict[str, Any], region: str) -> DeliveryReceipt | None:
    """{region}.platform.bird.com sms.sent / sms.delivered / sms.failed / ...: the type names the state."""
    state = _CHANNEL_STATES.get(str(event.get("type")).removeprefix("sms."))
    if state is None:
        return None
    return _receipt(_required(event, "data.sms_id"), state, event.get("timestamp"),
                    _get(event, "data.error.code") or _get(event, "data.failure.code") or None, None)


def _receipt(provider_id: str, state: DeliveryState, at: object, code: object,
             reference: str | None) -> DeliveryReceipt:
    _check_id("payload.id", provider_id)
    error_code = str(code)[:32] if isinstance(code, str | int) and not isinstance(code, bool) else None
    if reference is not None and (len(reference) > MAX_ID_CHARS or not reference.isprintable()):
        reference = None
    return DeliveryReceipt(provider_id=provider_id, state=state, at=_timestamp(at), error_code=error_code,
                           reference=reference)


_EVENT_HANDLERS: dict[str, _Handler] = {
    "sms.inbound": _channels_sms,
    "sms.outbound": _channels_status,
    **{f"sms.{name}": _platform_status
       for name in ("accepted", "sent", "delivered", "undelivered", "failed", "rejected", "expired")},
    "conversation.created": _conversation_event,
    "conversation.updated": _conversation_event,
    "message.created": _messagebird_message,
    "sms.received": _platform_sms,
}
