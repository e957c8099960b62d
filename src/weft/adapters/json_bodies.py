"""Reading JSON objects from webhook bodies and provider responses, the same way for every vendor."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from weft.adapters.untrusted import MAX_JSON_DEPTH, json_problem
from weft.domain.errors import MalformedWebhook

_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def load_object(raw: bytes, what: str = "body", strict_strings: bool = True) -> dict[str, Any]:
    """The JSON object in raw, or MalformedWebhook saying what is wrong with it: not JSON, not an object, nested
    too deep, or (with `strict_strings`) a string holding a NUL or half an emoji. A provider's free text may hold
    the latter; its parser then cleans that text (untrusted.sms_text)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise MalformedWebhook(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise MalformedWebhook(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{what} is JSON but not an object (got {type(value).__name__})")
    # Walk the parsed value only when the text could hide a problem: enough brackets to nest too deep, or (for
    # strict strings) an escape that decodes to NUL or half a surrogate pair, or any byte beyond ASCII (json
    # decodes bytes with surrogatepass, so an encoded lone surrogate needs no escape). Plain ASCII JSON cannot
    # carry a raw NUL: it is refused as a control character.
    deep = raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH
    risky = strict_strings and (not raw.isascii() or _RISKY_ESCAPE.search(raw) is not None)
    if (deep or risky) and (
            problem := json_problem(value, strings=strict_strings)):
        raise MalformedWebhook(f"{what}: {problem}")
    return value


def response_object(response: httpx.Response) -> dict[str, Any]:
    """A provider response's JSON object; empty when the body is not one (error pages, empty 202s)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response | Mapping[str, str] | None) -> float | None:
    """The Retry-After header in seconds (of a response, or of its headers), when the provider sent a number."""
    headers = response.headers if isinstance(response, httpx.Response) else response or {}
    try:
        return float(headers.get("retry-after", ""))
    except ValueError:
        return None
