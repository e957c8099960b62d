"""Reading JSON objects from webhook bodies and provider responses, the same way for every vendor."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from weft.domain.errors import MalformedWebhook


def load_object(raw: bytes, what: str = "body") -> dict[str, Any]:
    """The JSON object in raw, or MalformedWebhook saying what is wrong with it."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedWebhook(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{what} is JSON but not an object (got {type(value).__name__})")
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
