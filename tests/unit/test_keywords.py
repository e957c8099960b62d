from __future__ import annotations

import pytest

from weft.domain.keywords import Keyword, parse_keyword


@pytest.mark.parametrize("text", ["LOVE", "love", "love!", "  Love.  ", "LoVe?!"])
def test_join_word_matches_whatever_the_case_space_or_trailing_punctuation(text: str) -> None:
    assert parse_keyword(text).keyword is Keyword.JOIN


@pytest.mark.parametrize(
    "text", ["STOP", " Stop. ", "stopall", "UNSUBSCRIBE", "cancel", "end", "quit", "revoke", "optout", "opt out",
             "Opt  Out!"]
)
def test_every_carrier_opt_out_word_opts_out(text: str) -> None:
    assert parse_keyword(text).keyword is Keyword.OPT_OUT


@pytest.mark.parametrize(("text", "keyword"), [
    ("START", Keyword.OPT_IN), ("unstop", Keyword.OPT_IN), ("help", Keyword.HELP), ("Info?", Keyword.HELP),
    ("unsub", Keyword.LEAVE_PAID), ("yes", Keyword.CONFIRM),
])
def test_other_keywords_are_recognised(text: str, keyword: Keyword) -> None:
    assert parse_keyword(text).keyword is keyword


@pytest.mark.parametrize("text", ["STOP PLEASE", "I love this", "hello", "", "s t o p"])
def test_a_keyword_inside_a_sentence_is_not_a_command(text: str) -> None:
    assert parse_keyword(text).keyword is Keyword.NONE


def test_configured_join_words_replace_the_default() -> None:
    assert parse_keyword("weave", join_words=("WEAVE", "Thread")).keyword is Keyword.JOIN
    assert parse_keyword("thread!", join_words=("WEAVE", "Thread")).keyword is Keyword.JOIN
    assert parse_keyword("love", join_words=("WEAVE",)).keyword is Keyword.NONE


def test_a_join_word_can_never_shadow_stop() -> None:
    assert parse_keyword("stop", join_words=("STOP",)).keyword is Keyword.OPT_OUT


def test_long_texts_are_never_commands() -> None:
    assert parse_keyword("love " * 20).keyword is Keyword.NONE


def test_the_matched_word_is_normalised() -> None:
    assert parse_keyword("  opt   out. ").word == "OPT OUT"
