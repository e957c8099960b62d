from __future__ import annotations

from pathlib import Path

import pytest

from weft.config import ConfigError, load_settings


def test_the_embedded_default_needs_no_settings() -> None:
    settings = load_settings({}, env_file=None)
    assert (settings.sms_provider, settings.database_url) == ("console", "sqlite:///weft.db")


def test_bird_without_its_key_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="BIRD_API_KEY"):
        load_settings({"WEFT_SMS_PROVIDER": "bird", "BIRD_WORKSPACE_ID": "w", "BIRD_CHANNEL_ID": "c"}, env_file=None)


def test_an_unknown_provider_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="WEFT_SMS_PROVIDER"):
        load_settings({"WEFT_SMS_PROVIDER": "pigeon"}, env_file=None)


def test_a_public_url_that_is_not_http_fails() -> None:
    with pytest.raises(ConfigError, match="WEFT_PUBLIC_URL"):
        load_settings({"WEFT_PUBLIC_URL": "sms.example.com"}, env_file=None)


def test_ngrok_url_is_the_fallback_public_url() -> None:
    assert load_settings({"NGROK_URL": "https://abc.ngrok.app"}, env_file=None).public_url == "https://abc.ngrok.app"


def test_secrets_never_appear_in_the_settings_repr() -> None:
    settings = load_settings(
        {"BIRD_API_KEY": "key-secret-1", "BIRD_SIGNING_KEY": "sign-secret-2", "WEFT_ADMIN_TOKEN": "admin-secret-3"},
        env_file=None,
    )
    for secret in ("key-secret-1", "sign-secret-2", "admin-secret-3"):
        assert secret not in repr(settings)


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WEFT_JOIN_WORDS=weave, love\nWEFT_PROGRAM_NAME=From file\n")
    settings = load_settings({"WEFT_PROGRAM_NAME": "From env"}, env_file=env_file)
    assert settings.join_words == ("WEAVE", "LOVE")
    assert settings.program_name == "From env"
