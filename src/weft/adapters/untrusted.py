"""The edge: what arrives from outside (webhooks, forms, query strings, path parameters) is checked here before
anything is stored. Strings are valid Unicode without NUL, identifiers fit their columns, JSON nests only so
deep, and a text is no longer than an SMS can carry."""

from __future__ import annotations

import re
from typing import Any

MAX_JSON_DEPTH = 32
"""Deeper than any provider's payload (Stripe's events nest about 8 levels)."""
MAX_TEXT_CHARS = 1600
"""The longest text an SMS can carry (10 concatenated segments); longer ones are cut with a note."""
MAX_ID_CHARS = 128
"""Provider ids (Bird message ids, Stripe event, session and subscription ids) fit a 128-character column."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def problem_in(value: str) -> str | None:
    """What makes a string unstorable, or None: a NUL or a lone surrogate (half of an emoji)."""
    if "\x00" in value:
        return "contains a NUL character"
    if _LONE_SURROGATE.search(value):
        return "is not valid Unicode (a lone surrogate)"
    return None


def identifier(value: str, what: str, max_chars: int = MAX_ID_CHARS) -> str:
    """An id or token as given, or ValueError saying why it cannot be one."""
    if problem := problem_in(value):
        raise ValueError(f"{what} {problem}")
    if len(value) > max_chars:
        raise ValueError(f"{what} is {len(value)} characters long; at most {max_chars} are allowed")
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control character")
    return value


def sms_text(value: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A person's text as we store it: a split emoji's lone half becomes U+FFFD and NUL is dropped (a provider can
    deliver either, and neither is an attack), and a text longer than an SMS can carry is cut with a note."""
    text = _LONE_SURROGATE.sub("\ufffd", value).replace("\x00", "")
    if len(text) <= max_chars:
        return text
    note = f" [cut: {len(text) - max_chars} more characters]"
    return text[: max_chars - len(note)] + note


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH, strings: bool = True) -> str | None:
    """What makes parsed JSON unacceptable, or None: nesting deeper than `max_depth`, or (with `strings`) a key or
    string with a NUL or a lone surrogate (the path to it is named)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if strings and (problem := problem_in(node)):
                return f"{path or 'the value'} {problem}"
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            return f"JSON nests deeper than {max_depth} levels"
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if strings and isinstance(key, str) and (problem := problem_in(key)):
                return f"a key in {path or 'the object'} {problem}"
            stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
    return None
