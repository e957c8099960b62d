from __future__ import annotations

import json

import pytest

from weft.adapters.json_bodies import load_object
from weft.adapters.untrusted import identifier, sms_text
from weft.domain.errors import MalformedWebhook


def nested(depth: int) -> bytes:
    value: object = "x"
    for _ in range(depth - 1):
        value = {"a": value}
    return json.dumps({"a": value}).encode()


@pytest.mark.parametrize(("raw", "problem"), [
    (b'{"a": "\xed\xa0\x80"}', "lone surrogate"),  # encoded in UTF-8, no escape: json decodes with surrogatepass
    (b'{"a": "\\ud800"}', "lone surrogate"),
    (b'{"a": ["\\uDFFF"]}', "lone surrogate"),
    (b'{"\\u0000": 1}', "NUL"),
    (b'{"a": {"b": "\\u0000"}}', "a.b contains a NUL"),
    (nested(33), "deeper than 32"),
    (b"[" * 5000 + b"]" * 5000, "deeper than 32"),
])
def test_json_that_cannot_be_stored_is_malformed_naming_what_is_wrong(raw: bytes, problem: str) -> None:
    with pytest.raises(MalformedWebhook, match=problem):
        load_object(raw)


def test_json_at_the_depth_limit_with_ordinary_escapes_is_read() -> None:
    assert load_object(nested(32))["a"]
    assert load_object('{"name": "Zo\\u00eb \\ud83d\\udc9b", "raw": "é"}'.encode()) == {"name": "Zoë 💛", "raw": "é"}


def test_a_providers_free_text_may_hold_half_an_emoji_for_its_parser_to_clean() -> None:
    body = load_object(b'{"text": "hi \\ud83d"}', strict_strings=False)
    assert sms_text(body["text"]) == "hi \ufffd"
    with pytest.raises(MalformedWebhook, match="deeper"):
        load_object(nested(40), strict_strings=False)


def test_a_text_longer_than_an_sms_is_cut_to_1600_characters_with_a_note() -> None:
    assert sms_text("a" * 1600) == "a" * 1600
    cut = sms_text("a" * 2000 + "\x00")
    assert len(cut) == 1600 and cut.endswith(" [cut: 400 more characters]")


@pytest.mark.parametrize(("value", "problem"), [
    ("evt_\x00", "NUL"), ("evt_\ud800", "lone surrogate"), ("e" * 129, "129 characters"), ("evt\n1", "control"),
])
def test_an_identifier_that_cannot_be_stored_is_refused(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        identifier(value, "event id")
    assert identifier("evt_1OaBc", "event id") == "evt_1OaBc"
