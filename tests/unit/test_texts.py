"""Every text a member can receive is a kind of Replies: overridable, checked at start, listed in the README."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from weft.application.replies import COMMON_PLACEHOLDERS, Replies, default_texts, text_kinds, with_overrides
from weft.config import ConfigError, load_settings
from weft.containers import Container
from weft.domain.phone import PhoneNumber
from weft.domain.segments import sms_segments

README = Path(__file__).parent.parent.parent / "README.md"
PHONE = PhoneNumber("+14155550123")


def readme_row(kind: str) -> str:
    """The README's table row for a kind: its name, its placeholders and its default wording."""
    allowed = text_kinds()[kind]
    extra = ", ".join(f"`{{{p}}}`" for p in allowed if p not in COMMON_PLACEHOLDERS)
    placeholders = "none" if not allowed else f"the common ones, {extra}" if extra else "the common ones"
    wording = default_texts()[kind].replace("|", "\\|").replace("\n\n", "<br><br>")
    return f"| `{kind}` | {placeholders} | {wording} |"


def replies_for(environ: dict[str, str]) -> Replies:
    container = Container(settings=load_settings(environ, env_file=None))
    return container.replies()


@pytest.mark.parametrize("kind", list(text_kinds()))
def test_every_kind_of_text_is_in_the_readme_table_with_its_default_wording(kind: str) -> None:
    assert readme_row(kind) in README.read_text().splitlines(), f"README.md lacks (or has other wording for) {kind}"


@pytest.mark.parametrize("kind", list(text_kinds()))
def test_every_default_text_uses_only_placeholders_its_kind_can_fill(kind: str) -> None:
    load_settings({f"WEFT_TEMPLATE_{kind.upper()}": default_texts()[kind]}, env_file=None)


def test_the_program_name_is_one_setting_that_every_text_uses() -> None:
    replies = replies_for({"WEFT_PROGRAM_NAME": "Maple Circle"})
    texts = [replies.text(kind, **{name: "x" for name in placeholders if name not in COMMON_PLACEHOLDERS})
             for kind, placeholders in text_kinds().items()]
    assert not [text for text in texts if "Weft" in text]
    assert sum("Maple Circle" in text for text in texts) >= 15


def test_the_default_program_name_is_community_weft_in_keyword_replies_too() -> None:
    replies = replies_for({})
    assert replies.render(replies.help, PHONE).startswith("Community Weft: 1 care message a month.")
    assert replies.text("checkout_product") == "Community Weft membership"


def test_leaving_paid_membership_says_the_member_is_now_a_free_member() -> None:
    assert "You are now a free member." in replies_for({}).text("leave_paid")


def test_an_environment_variable_overrides_a_kind_of_text() -> None:
    replies = replies_for({"WEFT_TEMPLATE_HELP": "{program} helps: write to {support}."})
    assert replies.render(replies.help, PHONE) == "Community Weft helps: write to support@example.org."


def test_a_file_in_the_templates_directory_overrides_a_kind_and_the_variable_wins(tmp_path: Path) -> None:
    (tmp_path / "welcome.txt").write_text("Hello from {program}!\n")
    (tmp_path / "opt_in.txt").write_text("From the file")
    replies = replies_for({"WEFT_TEMPLATES_DIR": str(tmp_path), "WEFT_TEMPLATE_OPT_IN": "From the variable"})
    assert (replies.text("welcome"), replies.text("opt_in")) == ("Hello from Community Weft!", "From the variable")


def test_an_unknown_placeholder_stops_the_service_naming_the_variable_and_the_placeholder() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"WEFT_TEMPLATE_HELP": "Go to {link}"}, env_file=None)
    assert str(raised.value) == ("WEFT_TEMPLATE_HELP uses the unknown placeholder {link} "
                                 "(this text can use: {program}, {support}, {frequency}, {join_word})")


def test_an_unknown_placeholder_in_a_template_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "welcome.txt").write_text("Welcome, {name}!")
    with pytest.raises(ConfigError, match=r"WEFT_TEMPLATES_DIR: welcome.txt uses the unknown placeholder \{name\}"):
        load_settings({"WEFT_TEMPLATES_DIR": str(tmp_path)}, env_file=None)


@pytest.mark.parametrize(("environ", "variable"), [
    ({"WEFT_TEMPLATE_WELCOM": "Hi"}, "WEFT_TEMPLATE_WELCOM names no text"),
    ({"WEFT_TEMPLATE_HELP": "Unclosed {program"}, "WEFT_TEMPLATE_HELP is not a valid template"),
    ({"WEFT_MONTHLY_MESSAGE": "Care from {programme}"}, "WEFT_MONTHLY_MESSAGE uses the unknown placeholder"),
    ({"WEFT_TEMPLATES_DIR": "/no/such/dir"}, "WEFT_TEMPLATES_DIR must be a directory"),
])
def test_a_bad_template_setting_stops_the_service_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable.replace("{", r"\{")):
        load_settings(environ, env_file=None)


def test_an_empty_template_file_stops_the_service_and_an_empty_variable_is_unset(tmp_path: Path) -> None:
    (tmp_path / "help.txt").write_text("\n")
    with pytest.raises(ConfigError, match="WEFT_TEMPLATES_DIR: help.txt is empty"):
        load_settings({"WEFT_TEMPLATES_DIR": str(tmp_path)}, env_file=None)
    assert load_settings({"WEFT_TEMPLATE_HELP": " "}, env_file=None).templates == {}


def test_a_template_file_that_is_not_utf8_stops_the_service(tmp_path: Path) -> None:
    (tmp_path / "help.txt").write_bytes(b"\xff\xfe caf\xe9")
    with pytest.raises(ConfigError, match="help.txt cannot be read as UTF-8 text"):
        load_settings({"WEFT_TEMPLATES_DIR": str(tmp_path)}, env_file=None)


def test_a_file_that_names_no_kind_stops_the_service(tmp_path: Path) -> None:
    (tmp_path / "welcom.txt").write_text("Hi")
    with pytest.raises(ConfigError, match="welcom.txt names no text"):
        load_settings({"WEFT_TEMPLATES_DIR": str(tmp_path)}, env_file=None)


def test_the_older_monthly_message_variable_still_sets_the_care_text() -> None:
    replies = replies_for({"WEFT_MONTHLY_MESSAGE": "Care from {program}."})
    assert replies.text("monthly_care") == "Care from Community Weft."


def test_the_default_care_message_fits_one_sms_segment_under_the_default_program_name() -> None:
    assert sms_segments(replies_for({}).text("monthly_care")) == 1


def test_a_new_text_field_is_a_kind_with_the_common_placeholders_and_no_other_code() -> None:
    @attrs.frozen
    class MoreTexts(Replies):
        thank_you: str = "Thank you for your gift to {program}!"

    assert text_kinds(MoreTexts)["thank_you"] == ("program", "support", "frequency", "join_word")
    assert "program_name" not in text_kinds(MoreTexts)
    assert with_overrides(MoreTexts(), {"thank_you": "Thanks!"}).text("thank_you") == "Thanks!"


def test_the_email_sender_is_shown_under_the_program_name() -> None:
    assert load_settings({"WEFT_PROGRAM_NAME": "Maple Circle"}, env_file=None).email_from == (
        "Maple Circle <hello@example.org>")
    assert load_settings({"WEFT_EMAIL_FROM": "hi@maple.example"}, env_file=None).email_from == (
        "Community Weft <hi@maple.example>")
    assert load_settings({"WEFT_EMAIL_FROM": "Maple <hi@maple.example>"}, env_file=None).email_from == (
        "Maple <hi@maple.example>")


@pytest.mark.parametrize("name", ["WEFT_TERMS_URL", "WEFT_PRIVACY_URL"])
def test_terms_and_privacy_links_must_be_http_urls(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: "javascript:alert(1)"}, env_file=None)
    assert getattr(load_settings({name: "https://maple.example/legal"}, env_file=None),
                   name.removeprefix("WEFT_").lower()) == "https://maple.example/legal"
