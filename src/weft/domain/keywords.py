from __future__ import annotations

import enum
import functools
import string
from collections.abc import Iterable

import attrs

MAX_KEYWORD_LENGTH = 32
"""Longer texts are conversation, not commands: they are stored and never matched."""

_TRAILING = string.punctuation + string.whitespace


class Keyword(enum.Enum):
    JOIN = "join"
    OPT_OUT = "opt_out"
    LEAVE_PAID = "leave_paid"
    OPT_IN = "opt_in"
    CONFIRM = "confirm"
    HELP = "help"
    MEMBERSHIP = "membership"
    NONE = "none"


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
LEAVE_PAID_WORDS = frozenset({"UNSUB"})
CONFIRM_WORDS = frozenset({"YES"})
DEFAULT_JOIN_WORDS = ("LOVE",)
DEFAULT_MEMBERSHIP_WORDS = ("MEMBERSHIP",)


@attrs.frozen
class KeywordCommand:
    """What an inbound text asks for; `word` is the normalised text that matched (or the whole text)."""

    keyword: Keyword
    word: str


def normalise_text(text: str) -> str:
    """Exact-match form: trimmed, upper-case, trailing punctuation dropped, inner spaces collapsed."""
    return " ".join(text.strip().rstrip(_TRAILING).lstrip(string.whitespace).upper().split())


def parse_keyword(text: str, join_words: Iterable[str] = DEFAULT_JOIN_WORDS,
                  membership_words: Iterable[str] = DEFAULT_MEMBERSHIP_WORDS) -> KeywordCommand:
    """Match the whole text (exact match mode, as carriers do) against the keyword sets."""
    word = normalise_text(text)
    if len(word) > MAX_KEYWORD_LENGTH:
        return KeywordCommand(Keyword.NONE, word)
    for keyword, words in _rules(tuple(join_words), tuple(membership_words)):
        if word in words:
            return KeywordCommand(keyword, word)
    return KeywordCommand(Keyword.NONE, word)


@functools.lru_cache(maxsize=8)
def _rules(join_words: tuple[str, ...],
           membership_words: tuple[str, ...]) -> tuple[tuple[Keyword, frozenset[str]], ...]:
    # Opt-out is checked first so a community can never configure a join or membership word that swallows STOP.
    return (
        (Keyword.OPT_OUT, OPT_OUT_WORDS),
        (Keyword.OPT_IN, OPT_IN_WORDS),
        (Keyword.HELP, HELP_WORDS),
        (Keyword.LEAVE_PAID, LEAVE_PAID_WORDS),
        (Keyword.CONFIRM, CONFIRM_WORDS),
        (Keyword.JOIN, frozenset(normalise_text(w) for w in join_words)),
        (Keyword.MEMBERSHIP, frozenset(normalise_text(w) for w in membership_words)),
    )
