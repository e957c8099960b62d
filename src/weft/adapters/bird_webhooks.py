"""Bird (MessageBird) inbound SMS webhooks: verify any signature scheme Bird has used; map payloads to InboundSms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from weft.application.phone_numbers import normalise_phone
from weft.domain.errors import InvalidPhoneNumber, InvalidSignature, MalformedWebhook
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber

_JWT_DIGESTS: dict[str, Callable[[], Any]] = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_SIGNATURE_HEADERS = "messagebird-signature, messagebird-signature-jwt or webhook-signature"
_Check = Callable[[str, Mapping[str, str], bytes, str], str | None]
_Handler = Callable[[dict[str, Any], str], InboundSms | None]


def verify_bird_signature(signing_key: str, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
    """Return when the request is signed with signing_key under any Bird scheme; else raise InvalidSignature."""
    if not signing_key:
        raise InvalidSignature("no Bird signing key is configured")
    checks = [check for header, check in _SIGNATURE_CHECKS if header in headers]
    if not checks:
        raise InvalidSignature(f"missing signature header ({_SIGNATURE_HEADERS})")
    reasons: list[str] = []
    for check in checks:
        reason = check(signing_key, headers, raw_body, url)
        if reason is None:
            return
        reasons.append(reason)
    raise InvalidSignature("; ".join(reasons))


def parse_bird_payload(
    raw_body: bytes,
    content_type: str,
    query: Mapping[str, str],
    form: Mapping[str, str] | None,
    default_region: str = "US",
) -> InboundSms | None:
    """The inbound SMS a Bird webhook carries, None for a valid event we ignore; MalformedWebhook otherwise."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if raw_body.strip() and _is_json(media_type, raw_body):
        return _parse_event(_load_object(raw_body), default_region)
    fields = dict(query)
    if form is not None:
        fields.update(form)
    elif media_type == "application/x-www-form-urlencoded":
        fields.update(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
    return _parse_legacy(fields, default_region)


def _check_messagebird(key: str, headers: Mapping[str, str], body: bytes, url: str) -> str | None:
    """None when messagebird-signature matches the Channels recipe (signs the URL) or the v1 recipe (sorted query)."""
    timestamp = headers.get("messagebird-request-timestamp")
    if not timestamp:
        return "messagebird-request-timestamp header is missing"
    received = _b64decode(headers["messagebird-signature"])
    if received is None:
        return "messagebird-signature is not valid base64"
    body_hash = hashlib.sha256(body).digest()
    for signed_target in (url, _sorted_query(url)):
        message = timestamp.encode() + b"\n" + signed_target.encode() + b"\n" + body_hash
        if hmac.compare_digest(hmac.new(key.encode(), message, hashlib.sha256).digest(), received):
            return None
    return "messagebird-signature does not match"


def _sorted_query(url: str) -> str:
    """The URL's query parameters sorted and re-encoded, as MessageBird's v1 signature signs them."""
    query = url.partition("?")[2].partition("#")[0]
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def _check_jwt(key: str, headers: Mapping[str, str], body: bytes, url: str) -> str | None:
    """None when messagebird-signature-jwt is an HS256/384/512 JWT signed with key whose claims fit this request."""
    parts = headers["messagebird-signature-jwt"].strip().split(".")
    if len(parts) != 3:
        return "messagebird-signature-jwt is not a JWT"
    header, claims, signature = _b64url_object(parts[0]), _b64url_object(parts[1]), _b64decode(parts[2], url_safe=True)
    if header is None or claims is None or signature is None:
        return "messagebird-signature-jwt is not base64url-encoded JSON"
    digest = _JWT_DIGESTS.get(str(header.get("alg")))
    if digest is None:
        return f"messagebird-signature-jwt alg {header.get('alg')!r} is not HS256, HS384 or HS512"
    expected = hmac.new(key.encode(), f"{parts[0]}.{parts[1]}".encode(), digest).digest()
    if not hmac.compare_digest(expected, signature):
        return "messagebird-signature-jwt does not match"
    return _check_jwt_claims(claims, body, url)


def _check_jwt_claims(claims: dict[str, Any], body: bytes, url: str) -> str | None:
    """None when the JWT names MessageBird as issuer and hashes this URL and body."""
    # nbf/exp are deliberately ignored: Bird retries for hours with the original token; message-id dedupe stops replays.
    if claims.get("iss") != "MessageBird":
        return "messagebird-signature-jwt iss is not MessageBird"
    if not _same_hex(claims.get("url_hash"), hashlib.sha256(url.encode()).hexdigest()):
        return "messagebird-signature-jwt url_hash does not match the URL"
    nothing_hashed = not body and "payload_hash" not in claims
    if not nothing_hashed and not _same_hex(claims.get("payload_hash"), hashlib.sha256(body).hexdigest()):
        return "messagebird-signature-jwt payload_hash does not match the body"
    return None


def _check_standard_webhooks(key: str, headers: Mapping[str, str], body: bytes, url: str) -> str | None:
    """None when any v1 entry of webhook-signature is the Standard Webhooks HMAC of id, timestamp and body."""
    message_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not message_id or not timestamp:
        return "webhook-id or webhook-timestamp header is missing"
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = hmac.new(_standard_webhooks_key(key), signed, hashlib.sha256).digest()
    for entry in headers["webhook-signature"].split():
        version, _, encoded = entry.partition(",")
        received = _b64decode(encoded)
        if version == "v1" and received is not None and hmac.compare_digest(expected, received):
            return None
    return "webhook-signature has no matching v1 entry"


def _standard_webhooks_key(secret: str) -> bytes:
    """Key bytes of a Standard Webhooks secret: base64 after any whsec_ prefix when it decodes, else the raw text."""
    stripped = secret.removeprefix("whsec_")
    decoded = _b64decode(stripped)
    return decoded if decoded else stripped.encode()


def _b64decode(text: str, url_safe: bool = False) -> bytes | None:
    """Strictly decoded base64 (or unpadded base64url), None when text is not valid."""
    try:
        if url_safe:
            return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _b64url_object(segment: str) -> dict[str, Any] | None:
    """The JSON object in a base64url JWT segment, None when it is not one."""
    raw = _b64decode(segment, url_safe=True)
    try:
        value = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _same_hex(claimed: object, expected: str) -> bool:
    """Constant-time comparison of a claimed hex digest with the expected one."""
    return isinstance(claimed, str) and hmac.compare_digest(claimed.lower().encode(), expected.encode())


_SIGNATURE_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("messagebird-signature", _check_messagebird),
    ("messagebird-signature-jwt", _check_jwt),
    ("webhook-signature", _check_standard_webhooks),
)


def _is_json(media_type: str, body: bytes) -> bool:
    """Whether the body should be read as JSON: declared so, or undeclared/unknown and shaped like JSON."""
    if media_type.endswith("json"):
        return True
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    return body.lstrip()[:1] in (b"{", b"[")


def _load_object(raw_body: bytes) -> dict[str, Any]:
    """The JSON object in the body, or MalformedWebhook."""
    try:
        value = json.loads(raw_body)
    except (ValueError, RecursionError) as exc:
        raise MalformedWebhook(f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedWebhook(f"body is JSON but not an object (got {type(value).__name__})")
    return value


def _parse_event(event: dict[str, Any], region: str) -> InboundSms | None:
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
        conversation_id=_optional(event, "payload.conversationId"),  # undocumented here; used if Bird ever adds it
        channel_id=_optional(event, "payload.channelId"),
        received_at=_timestamp(_get(event, "payload.createdAt")),
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
        conversation_id=_optional(event, "payload.id"),
        channel_id=_optional(event, "payload.channelId"),
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
        conversation_id=_optional(event, "message.conversationId") or _optional(event, "conversation.id"),
        channel_id=_optional(event, "message.channelId"),
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
    sent_at = fields.get("createdDatetime") or fields.get("receive_datetime") or ""
    # Flow Builder forwards carry no id; this derived one means two identical texts in the same second dedupe as one.
    derived_id = "legacy-" + hashlib.sha256((originator + text + sent_at).encode()).hexdigest()
    return InboundSms(
        provider_id=fields.get("id") or fields.get("mid") or derived_id,
        sender=_phone(fields, "originator", region, international=True),
        text=text,
        received_at=_timestamp(fields.get("createdDatetime", "").replace(" ", "+")),  # unescaped '+' reads as a space
    )


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
    """The validated phone at path; international numbers arrive as bare digits and get their '+' back."""
    raw = _required(root, path).strip()
    if international and not raw.startswith("+"):
        raw = "+" + raw
    try:
        return normalise_phone(raw, region)
    except InvalidPhoneNumber as exc:
        raise MalformedWebhook(f"{path}: {exc}") from exc


def _timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp as a datetime, None when absent or unparseable (it is informative only)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


_EVENT_HANDLERS: dict[str, _Handler] = {
    "sms.inbound": _channels_sms,
    "conversation.created": _conversation_event,
    "conversation.updated": _conversation_event,
    "message.created": _messagebird_message,
    "sms.received": _platform_sms,
}
