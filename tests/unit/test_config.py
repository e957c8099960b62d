from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from weft.bootstrap import MaskPhones, listen_url
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


def test_a_database_password_never_appears_in_the_settings_repr() -> None:
    settings = load_settings({"WEFT_DATABASE_URL": "postgresql://weft:s3cret-pw@db.internal/weft"}, env_file=None)
    assert "s3cret-pw" not in repr(settings)
    assert "postgresql://weft:***@db.internal/weft" in repr(settings)


def test_log_records_lose_phones_and_link_tokens_even_inside_tracebacks() -> None:
    try:
        raise ValueError("INSERT failed for ('+14155550123', 'LOVE')")
    except ValueError:
        record = logging.LogRecord("weft", logging.ERROR, __file__, 1, "GET /?phone=%s&t=%s", ("%2B14155550123",
                                   "6b0dacfa.pDxqi6DjF2JPNmf3Z70Uqbor"), sys.exc_info())
    MaskPhones().filter(record)
    text = logging.Formatter().format(record)
    assert "4155550123" not in text and "pDxqi6DjF2JPNmf3Z70Uqbor" not in text
    assert "GET /?phone=%2B*******0123&t=***" in text
    assert "ValueError: INSERT failed for ('+*******0123', 'LOVE')" in text


@pytest.mark.parametrize(("name", "value"), [("WEFT_DEFAULT_REGION", "ZZ"), ("WEFT_DATABASE_URL", "mysql://x:pw@h/db"),
                                             ("SMTP_PORT", "smtp"), ("WEFT_EMAIL_PROVIDER", "pigeon")])
def test_an_invalid_setting_fails_naming_the_variable_and_hiding_passwords(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as raised:
        load_settings({name: value}, env_file=None)
    assert ":pw@" not in str(raised.value)


@pytest.mark.parametrize(("key", "pace"), [("sk_test_abc", 20.0), ("rk_test_abc", 20.0), ("sk_live_abc", 80.0),
                                          ("rk_live_abc", 80.0)])
def test_the_stripe_pace_leaves_headroom_under_the_key_modes_limit(key: str, pace: float) -> None:
    settings = load_settings({"STRIPE_SECRET_KEY": key, "STRIPE_WEBHOOK_SECRET": "whsec_x"}, env_file=None)
    assert settings.stripe_max_requests_per_second == pace


def test_a_set_stripe_pace_wins_and_a_bad_one_fails_naming_the_variable() -> None:
    env = {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    settings = load_settings({**env, "STRIPE_MAX_REQUESTS_PER_SECOND": "5"}, env_file=None)
    assert settings.stripe_max_requests_per_second == 5
    with pytest.raises(ConfigError, match="STRIPE_MAX_REQUESTS_PER_SECOND"):
        load_settings({**env, "STRIPE_MAX_REQUESTS_PER_SECOND": "fast"}, env_file=None)


TWILIO = {"WEFT_SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
          "TWILIO_AUTH_TOKEN": "fedcba9876543210" * 2, "TWILIO_FROM_NUMBER": "+14155550100"}


def test_twilio_with_its_settings_is_a_valid_provider_paced_for_one_long_code() -> None:
    settings = load_settings(TWILIO, env_file=None)
    assert (settings.sms_provider, settings.twilio_from_number, settings.sms_rate_per_second) == (
        "twilio", "+14155550100", 1.0)
    assert settings.twilio_configured and not settings.bird_configured
    assert "fedcba9876543210" not in repr(settings)


@pytest.mark.parametrize(("change", "name"), [
    ({"TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_ACCOUNT_SID": "ACnot-a-sid"}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_AUTH_TOKEN": "short"}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_FROM_NUMBER": ""}, "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER"),
    ({"TWILIO_FROM_NUMBER": "4155550100"}, "TWILIO_FROM_NUMBER"),
    ({"TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "TWILIO_MESSAGING_SERVICE_SID"),
    ({"TWILIO_API_URL": "api.twilio.com"}, "TWILIO_API_URL"),
])
def test_a_missing_or_malformed_twilio_setting_stops_the_service_naming_it(change: dict[str, str],
                                                                           name: str) -> None:
    with pytest.raises(ConfigError, match=name) as raised:
        load_settings({**TWILIO, **change}, env_file=None)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("name", "value"), [("WEFT_SYNC_INTERVAL_MINUTES", "-1"),
                                             ("WEFT_SYNC_REPLY_WINDOW_SECONDS", "soon")])
def test_a_bad_sync_setting_fails_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)


def test_the_sync_runs_every_15_minutes_and_replies_within_10_by_default() -> None:
    settings = load_settings({}, env_file=None)
    assert (settings.sync_interval_minutes, settings.sync_reply_window_seconds) == (15, 600)


AIRTABLE = {"AIRTABLE_API_KEY": "patAbcdefghijklmn.0123456789abcdef", "AIRTABLE_BASE_ID": "appAbcdefghijklmn"}


def test_airtable_unset_keeps_no_copy_and_both_settings_turn_it_on() -> None:
    assert not load_settings({}, env_file=None).airtable_configured
    settings = load_settings(AIRTABLE, env_file=None)
    assert settings.airtable_configured
    assert (settings.airtable_phone_numbers_table, settings.airtable_payments_table) == ("Phone Numbers", "Payments")
    assert "patAbcdefghijklmn" not in repr(settings)


@pytest.mark.parametrize(("changes", "named"), [
    ({"AIRTABLE_BASE_ID": ""}, "AIRTABLE_BASE_ID"),
    ({"AIRTABLE_API_KEY": ""}, "AIRTABLE_API_KEY"),
    ({"AIRTABLE_API_KEY": "keyAbcdefghijklmn"}, "AIRTABLE_API_KEY"),
    ({"AIRTABLE_BASE_ID": "appShort"}, "AIRTABLE_BASE_ID"),
    ({"AIRTABLE_API_URL": "api.airtable.com"}, "AIRTABLE_API_URL"),
    ({"AIRTABLE_MAX_REQUESTS_PER_SECOND": "10"}, "AIRTABLE_MAX_REQUESTS_PER_SECOND"),
    ({"AIRTABLE_PAYMENTS_TABLE": "Phone Numbers"}, "AIRTABLE_PAYMENTS_TABLE"),
])
def test_a_malformed_airtable_setting_stops_the_service_naming_it(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**AIRTABLE, **changes}, env_file=None)
    assert named in str(raised.value)
    assert "0123456789abcdef" not in str(raised.value)


def test_without_a_public_url_the_settings_leave_it_to_the_address_weft_serve_listens_on() -> None:
    assert not load_settings({}, env_file=None).public_url_configured
    assert load_settings({"WEFT_PUBLIC_URL": "https://sms.example.org"}, env_file=None).public_url_configured


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
    ("0.0.0.0", 8000, "http://127.0.0.1:8000"),
    ("localhost", 9000, "http://localhost:9000"),
    ("::1", 8000, "http://[::1]:8000"),
])
def test_the_listening_address_makes_the_default_link_base(host: str, port: int, url: str) -> None:
    assert listen_url(host, port) == url


def test_membership_words_are_configurable_and_never_empty() -> None:
    settings = load_settings({"WEFT_MEMBERSHIP_WORDS": "plan, Account"}, env_file=None)
    assert settings.membership_words == ("PLAN", "ACCOUNT")
    with pytest.raises(ConfigError, match="WEFT_MEMBERSHIP_WORDS"):
        load_settings({"WEFT_MEMBERSHIP_WORDS": " , "}, env_file=None)
