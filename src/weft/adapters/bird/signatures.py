"""Bird (MessageBird) webhook signatures: every scheme Bird has used, checked without trusting timestamps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import standardwebhooks

from weft.domain.errors import InvalidSignature

_JWT_DIGESTS: dict[str, Callable[[], Any]] = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_SIGNATURE_HEADERS = "messagebird-signature, messagebird-signature-jwt or webhook-signature"
_Check = Callable[[str, Mapping[str, str], bytes, str], str | None]


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
    """None when any v1 entry of webhook-signature is the Standard Webhooks signature of id, timestamp and body,
    as the `standardwebhooks` package computes it. Its `verify` also refuses timestamps over 5 minutes old, and
    Bird retries a failed delivery for hours with the original timestamp, so only its signing is used here."""
    message_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not message_id or not timestamp:
        return "webhook-id or webhook-timestamp header is missing"
    if not timestamp.isascii() or not timestamp.isdigit():
        return "webhook-timestamp is not a number of seconds"
    try:
        expected = _standard_webhook(key).sign(message_id, datetime.fromtimestamp(int(timestamp), UTC), body.decode())
    except (ValueError, OverflowError, OSError):  # a body that is not UTF-8, a timestamp out of range
        return "webhook-timestamp or body cannot be read"
    for entry in headers["webhook-signature"].split():
        if entry.startswith("v1,") and hmac.compare_digest(expected.encode(), entry.encode()):
            return None
    return "webhook-signature has no matching v1 entry"


def _standard_webhook(secret: str) -> standardwebhooks.Webhook:
    """The package's Webhook for a secret: base64 after any whsec_ prefix when it decodes, else the raw text."""
    stripped = secret.removeprefix("whsec_")
    decoded = _b64decode(stripped)
    return standardwebhooks.Webhook(decoded if decoded else stripped.encode())


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
