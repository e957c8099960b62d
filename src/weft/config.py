from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import phonenumbers
from apscheduler.triggers.cron import CronTrigger
from dotenv import dotenv_values

from weft.adapters.bird.sender import DEFAULT_BIRD_API_URL
from weft.adapters.twilio.sender import DEFAULT_TWILIO_API_URL
from weft.domain.quiet_hours import QuietHours
from weft.text_settings import read_templates

SMS_PROVIDERS = ("console", "bird", "twilio")
EMAIL_PROVIDERS = ("console", "smtp", "resend")
DEFAULT_DATABASE_URL = "sqlite:///weft.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_SMS_RATE = {"bird": 10.0, "twilio": 1.0}
"""Segments per second by provider when WEFT_SMS_RATE_PER_SECOND is unset. Bird: 10, the AT&T limit of a
mid-trust US 10DLC campaign (600 a minute); lower tiers are 1/s, and Bird queues what exceeds a carrier limit
but retries it only ten times. Twilio: 1, what one long-code number may send (a toll-free number starts at 3, a
10DLC campaign or a short code more: set the rate). The console prints, so it needs no pace."""
DEFAULT_PROGRAM_NAME = "Community Weft"
DEFAULT_EMAIL_ADDRESS = "hello@example.org"
DEFAULT_MONTHLY_SCHEDULE = "0 10 1 * *"
DEFAULT_AIRTABLE_API_URL = "https://api.airtable.com"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


@attrs.frozen
class Settings:
    database_url: str = attrs.field(default=DEFAULT_DATABASE_URL, repr=lambda url: _without_password(url))
    public_url: str = DEFAULT_PUBLIC_URL
    sms_provider: str = "console"
    bird_api_url: str = DEFAULT_BIRD_API_URL
    bird_workspace_id: str = ""
    bird_channel_id: str = ""
    bird_access_key_id: str = ""
    bird_api_key: str = attrs.field(default="", repr=False)
    bird_signing_key: str = attrs.field(default="", repr=False)
    twilio_api_url: str = DEFAULT_TWILIO_API_URL
    twilio_account_sid: str = ""
    twilio_auth_token: str = attrs.field(default="", repr=False)
    twilio_messaging_service_sid: str = ""
    twilio_from_number: str = ""
    sync_interval_minutes: int = 15
    """How often the Bird automation sync runs (0: never on its own); only when Bird is configured."""
    sync_reply_window_seconds: int = 600
    """A keyword text the sync finds gets its reply only when younger than this."""
    admin_token: str = attrs.field(default="", repr=False)
    """One token, or several separated by commas (so a new one can be added before the old one is removed)."""
    admin_session_hours: float = 12.0
    public_url_configured: bool = True
    """WEFT_PUBLIC_URL (or NGROK_URL) was set; without it links use the address `weft serve` listens on."""
    join_words: tuple[str, ...] = ("LOVE",)
    membership_words: tuple[str, ...] = ("MEMBERSHIP",)
    """Texting one of these gets a short-lived link to the payment provider's customer portal."""
    provider_sends_keyword_replies: bool = False
    program_name: str = DEFAULT_PROGRAM_NAME
    support_contact: str = "support@example.org"
    terms_url: str = ""
    privacy_url: str = ""
    templates: dict[str, str] = attrs.field(factory=dict, hash=False)
    """Texts that replace a kind's default wording (WEFT_TEMPLATE_<KIND>, WEFT_TEMPLATES_DIR), already checked."""
    default_region: str = "US"
    stripe_api_base: str = "https://api.stripe.com"
    stripe_secret_key: str = attrs.field(default="", repr=False)
    stripe_webhook_secret: str = attrs.field(default="", repr=False)
    stripe_max_requests_per_second: float = 20.0
    email_provider: str = "console"
    email_from: str = f"{DEFAULT_PROGRAM_NAME} <{DEFAULT_EMAIL_ADDRESS}>"
    resend_api_url: str = "https://api.resend.com"
    resend_api_key: str = attrs.field(default="", repr=False)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = attrs.field(default="", repr=False)
    smtp_tls: str = "starttls"
    link_secret: str = attrs.field(default="", repr=False)
    link_ttl_seconds: int = 7 * 24 * 3600
    checkout_min_dollars: int = 1
    checkout_max_dollars: int = 1000
    sms_rate_per_second: float | None = None
    """Segments per second to the SMS provider; None is unlimited."""
    sms_daily_cap: int | None = None
    send_retry_hours: float = 24.0
    monthly_schedule: str = DEFAULT_MONTHLY_SCHEDULE
    quiet_hours: str = "21:00-09:00"
    time_zone: str = "UTC"
    scheduler: bool = True
    lease_seconds: float = 20.0
    """How long a worker's claim lasts unless renewed: a dead process's work moves on within this long."""
    airtable_api_key: str = attrs.field(default="", repr=False)
    airtable_base_id: str = ""
    airtable_api_url: str = DEFAULT_AIRTABLE_API_URL
    airtable_phone_numbers_table: str = "Phone Numbers"
    airtable_payments_table: str = "Payments"
    airtable_requests_per_second: float = 5.0
    """Airtable's limit is 5 requests a second per base, shared by everything that writes to the base."""
    alert_email: str = ""
    alert_min_success_rate: float = 0.95
    alert_min_messages: int = 20
    alert_stall_minutes: int = 15
    alert_check_seconds: int = 60
    """How often the scheduler checks the alerts (0: never on this instance)."""
    metrics_public: bool = False
    """/metrics answers without the admin token (for a scraper on a private network)."""

    @property
    def admin_tokens(self) -> tuple[str, ...]:
        return tuple(token.strip() for token in self.admin_token.split(",") if token.strip())

    @property
    def airtable_configured(self) -> bool:
        """The organisers' Airtable base is kept in step (both its token and its base id are set)."""
        return bool(self.airtable_api_key and self.airtable_base_id)

    @property
    def bird_configured(self) -> bool:
        """Bird is the sender, or its webhook signing key is set: its webhook routes are open."""
        return self.sms_provider == "bird" or bool(self.bird_signing_key)

    @property
    def bird_sync_available(self) -> bool:
        """Bird's message list can be read (the automation sync)."""
        return bool(self.bird_api_key and self.bird_workspace_id and self.bird_channel_id)

    @property
    def twilio_configured(self) -> bool:
        """Twilio is the sender, or its auth token is set: its webhook routes are open."""
        return self.sms_provider == "twilio" or bool(self.twilio_auth_token)

    @property
    def payment_provider(self) -> str:
        return "test_mode" if self.test_mode_checkout else "stripe"

    @property
    def test_mode_checkout(self) -> bool:
        """No Stripe key: the app runs its own clearly labelled test-mode checkout."""
        return not self.stripe_secret_key


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read settings from the environment (over a .env file when present) and validate them."""
    env: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    settings = _from_env(env)
    _validate(settings)
    return settings


def _from_env(env: Mapping[str, str]) -> Settings:
    def get(name: str, default: str = "") -> str:
        return env.get(name, "").strip() or default

    return Settings(
        database_url=get("WEFT_DATABASE_URL", DEFAULT_DATABASE_URL),
        public_url=get("WEFT_PUBLIC_URL", get("NGROK_URL", DEFAULT_PUBLIC_URL)),
        public_url_configured=bool(get("WEFT_PUBLIC_URL") or get("NGROK_URL")),
        sms_provider=get("WEFT_SMS_PROVIDER", "console").lower(),
        bird_api_url=get("BIRD_API_URL", DEFAULT_BIRD_API_URL),
        bird_workspace_id=get("BIRD_WORKSPACE_ID"),
        bird_channel_id=get("BIRD_CHANNEL_ID"),
        bird_access_key_id=get("BIRD_ACCESS_KEY_ID"),
        bird_api_key=get("BIRD_API_KEY"),
        bird_signing_key=get("BIRD_SIGNING_KEY"),
        twilio_api_url=get("TWILIO_API_URL", DEFAULT_TWILIO_API_URL),
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
        twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID"),
        twilio_from_number=get("TWILIO_FROM_NUMBER"),
        sync_interval_minutes=_positive_int("WEFT_SYNC_INTERVAL_MINUTES", get("WEFT_SYNC_INTERVAL_MINUTES", "15"),
                                            allow_zero=True),
        sync_reply_window_seconds=_positive_int("WEFT_SYNC_REPLY_WINDOW_SECONDS",
                                                get("WEFT_SYNC_REPLY_WINDOW_SECONDS", "600"), allow_zero=True),
        admin_token=get("WEFT_ADMIN_TOKEN"),
        admin_session_hours=_positive_number("WEFT_ADMIN_SESSION_HOURS", get("WEFT_ADMIN_SESSION_HOURS", "12")),
        join_words=tuple(w.strip().upper() for w in get("WEFT_JOIN_WORDS", "LOVE").split(",") if w.strip()),
        membership_words=tuple(w.strip().upper() for w in get("WEFT_MEMBERSHIP_WORDS", "MEMBERSHIP").split(",")
                               if w.strip()),
        provider_sends_keyword_replies=_flag("WEFT_PROVIDER_SENDS_KEYWORD_REPLIES",
                                             get("WEFT_PROVIDER_SENDS_KEYWORD_REPLIES", "false")),
        program_name=get("WEFT_PROGRAM_NAME", DEFAULT_PROGRAM_NAME),
        support_contact=get("WEFT_SUPPORT_CONTACT", "support@example.org"),
        terms_url=get("WEFT_TERMS_URL"),
        privacy_url=get("WEFT_PRIVACY_URL"),
        templates=_templates(env),
        default_region=get("WEFT_DEFAULT_REGION", "US").upper(),
        stripe_api_base=get("STRIPE_API_BASE", "https://api.stripe.com"),
        stripe_secret_key=get("STRIPE_SECRET_KEY"),
        stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
        stripe_max_requests_per_second=_stripe_pace(get("STRIPE_MAX_REQUESTS_PER_SECOND"), get("STRIPE_SECRET_KEY")),
        email_provider=get("WEFT_EMAIL_PROVIDER", "console").lower(),
        email_from=_sender(get("WEFT_EMAIL_FROM", DEFAULT_EMAIL_ADDRESS),
                           get("WEFT_PROGRAM_NAME", DEFAULT_PROGRAM_NAME)),
        resend_api_url=get("RESEND_API_URL", "https://api.resend.com"),
        resend_api_key=get("RESEND_API_KEY"),
        smtp_host=get("SMTP_HOST", "127.0.0.1"),
        smtp_port=_int("SMTP_PORT", get("SMTP_PORT", "587")),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_tls=get("SMTP_TLS", "starttls").lower(),
        link_secret=get("WEFT_LINK_SECRET"),
        link_ttl_seconds=_int("WEFT_LINK_TTL_SECONDS", get("WEFT_LINK_TTL_SECONDS", str(7 * 24 * 3600))),
        checkout_min_dollars=_int("WEFT_CHECKOUT_MIN_DOLLARS", get("WEFT_CHECKOUT_MIN_DOLLARS", "1")),
        checkout_max_dollars=_int("WEFT_CHECKOUT_MAX_DOLLARS", get("WEFT_CHECKOUT_MAX_DOLLARS", "1000")),
        **_sending(get),
        **_airtable(get),
        **_alerts(get),
    )


def _alerts(get: Callable[..., str]) -> dict[str, Any]:
    rate = get("WEFT_ALERT_MIN_SUCCESS_RATE", "0.95")
    return {
        "alert_email": _email("WEFT_ALERT_EMAIL", get("WEFT_ALERT_EMAIL")),
        "alert_min_success_rate": _fraction("WEFT_ALERT_MIN_SUCCESS_RATE", rate),
        "alert_min_messages": _positive_int("WEFT_ALERT_MIN_MESSAGES", get("WEFT_ALERT_MIN_MESSAGES", "20")),
        "alert_stall_minutes": _positive_int("WEFT_ALERT_STALL_MINUTES", get("WEFT_ALERT_STALL_MINUTES", "15")),
        "alert_check_seconds": _positive_int("WEFT_ALERT_CHECK_SECONDS", get("WEFT_ALERT_CHECK_SECONDS", "60"),
                                             allow_zero=True),
        "metrics_public": _flag("WEFT_METRICS_PUBLIC", get("WEFT_METRICS_PUBLIC", "false")),
    }


def _email(name: str, value: str) -> str:
    if value and not re.fullmatch(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+", value):
        raise ConfigError(f"{name} must be one email address such as ops@example.org, not {value!r}")
    return value


def _fraction(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise ConfigError(f"{name} must be a number from 0 to 1 (0.95 is 95%), not {value!r}")
    return number


def _airtable(get: Callable[..., str]) -> dict[str, Any]:
    return {
        "airtable_api_key": get("AIRTABLE_API_KEY"), "airtable_base_id": get("AIRTABLE_BASE_ID"),
        "airtable_api_url": get("AIRTABLE_API_URL", DEFAULT_AIRTABLE_API_URL),
        "airtable_phone_numbers_table": get("AIRTABLE_PHONE_NUMBERS_TABLE", "Phone Numbers"),
        "airtable_payments_table": get("AIRTABLE_PAYMENTS_TABLE", "Payments"),
        "airtable_requests_per_second": _positive_number("AIRTABLE_MAX_REQUESTS_PER_SECOND",
                                                         get("AIRTABLE_MAX_REQUESTS_PER_SECOND", "5")),
    }


def _sending(get: Callable[..., str]) -> dict[str, Any]:
    provider = get("WEFT_SMS_PROVIDER", "console").lower()
    rate = get("WEFT_SMS_RATE_PER_SECOND")
    cap = get("WEFT_SMS_DAILY_CAP")
    return {
        "sms_rate_per_second": _rate(rate) if rate else DEFAULT_SMS_RATE.get(provider),
        "sms_daily_cap": _positive_int("WEFT_SMS_DAILY_CAP", cap) if cap else None,
        "send_retry_hours": _positive_number("WEFT_SEND_RETRY_HOURS", get("WEFT_SEND_RETRY_HOURS", "24")),
        "monthly_schedule": get("WEFT_MONTHLY_SCHEDULE", DEFAULT_MONTHLY_SCHEDULE),
        "quiet_hours": get("WEFT_QUIET_HOURS", "21:00-09:00").lower(),
        "time_zone": get("WEFT_TIMEZONE", "UTC"),
        "scheduler": _flag("WEFT_SCHEDULER", get("WEFT_SCHEDULER", "on")),
        "lease_seconds": _positive_number("WEFT_LEASE_SECONDS", get("WEFT_LEASE_SECONDS", "20")),
    }


def _templates(env: Mapping[str, str]) -> dict[str, str]:
    try:
        return read_templates(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _sender(address: str, program: str) -> str:
    """The email sender; a bare address is shown under the program's name."""
    return address if "<" in address else f"{program} <{address}>"


def _stripe_pace(value: str, secret_key: str) -> float:
    """Requests a second to Stripe: as set, else headroom under Stripe's limits (25/s in test mode, 100/s live)."""
    if value:
        return _positive_number("STRIPE_MAX_REQUESTS_PER_SECOND", value)
    return 20.0 if secret_key.startswith(("sk_test_", "rk_test_")) or not secret_key else 80.0


def _rate(value: str) -> float | None:
    if value.lower() in ("0", "unlimited", "none", "off"):
        return None
    return _positive_number("WEFT_SMS_RATE_PER_SECOND", value)


def _positive_number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"{name} must be a positive number, not {value!r}")
    return number


def _positive_int(name: str, value: str, allow_zero: bool = False) -> int:
    number = _int(name, value)
    if number < (0 if allow_zero else 1):
        allowed = "0 or a positive whole number" if allow_zero else "a positive whole number"
        raise ConfigError(f"{name} must be {allowed}, not {value!r}")
    return number


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return repr(url)
    return repr(url.replace(f":{parts.password}@", ":***@", 1))


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (on or off), not {value!r}")


def _validate(s: Settings) -> None:
    if s.sms_provider not in SMS_PROVIDERS:
        raise ConfigError(f"WEFT_SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, not {s.sms_provider!r}")
    _require_http("WEFT_PUBLIC_URL", s.public_url)
    for name, value in (("WEFT_TERMS_URL", s.terms_url), ("WEFT_PRIVACY_URL", s.privacy_url)):
        if value:
            _require_http(name, value)
    if s.default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"WEFT_DEFAULT_REGION must be a two-letter region such as US or GB, not {s.default_region!r}")
    if urlsplit(s.database_url).scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"WEFT_DATABASE_URL must be a sqlite:/// or postgresql:// URL, not {_without_password(s.database_url)}"
        )
    if not s.join_words:
        raise ConfigError("WEFT_JOIN_WORDS must name at least one word")
    if not s.membership_words:
        raise ConfigError("WEFT_MEMBERSHIP_WORDS must name at least one word")
    _validate_payments_and_email(s)
    _validate_sending(s)
    if s.sms_provider == "bird":
        _require_http("BIRD_API_URL", s.bird_api_url)
        for name, value in (("BIRD_API_KEY", s.bird_api_key), ("BIRD_WORKSPACE_ID", s.bird_workspace_id),
                            ("BIRD_CHANNEL_ID", s.bird_channel_id)):
            if not value:
                raise ConfigError(f"{name} is required when WEFT_SMS_PROVIDER=bird")
    _validate_twilio(s)
    _validate_airtable(s)


def _validate_airtable(s: Settings) -> None:
    if bool(s.airtable_api_key) != bool(s.airtable_base_id):
        missing = "AIRTABLE_BASE_ID" if s.airtable_api_key else "AIRTABLE_API_KEY"
        raise ConfigError(f"{missing} is required when the other Airtable setting is set (set both, or neither)")
    if not s.airtable_configured:
        return
    if not re.fullmatch(r"pat[A-Za-z0-9]+\.[A-Za-z0-9]+", s.airtable_api_key):
        raise ConfigError("AIRTABLE_API_KEY must be a personal access token (pat… with a dot in it, as Airtable's "
                          "builder hub shows it once)")
    if not re.fullmatch(r"app[A-Za-z0-9]{14}", s.airtable_base_id):
        raise ConfigError(f"AIRTABLE_BASE_ID must be app followed by 14 letters and digits (from the base's URL), "
                          f"not {s.airtable_base_id!r}")
    _require_http("AIRTABLE_API_URL", s.airtable_api_url)
    if s.airtable_requests_per_second > 5:
        raise ConfigError("AIRTABLE_MAX_REQUESTS_PER_SECOND must be at most 5, Airtable's limit for one base")
    for name, table in (("AIRTABLE_PHONE_NUMBERS_TABLE", s.airtable_phone_numbers_table),
                        ("AIRTABLE_PAYMENTS_TABLE", s.airtable_payments_table)):
        if len(table) > 255:
            raise ConfigError(f"{name} must be a table name of at most 255 characters")
    if s.airtable_phone_numbers_table == s.airtable_payments_table:
        raise ConfigError("AIRTABLE_PHONE_NUMBERS_TABLE and AIRTABLE_PAYMENTS_TABLE must name two different tables")


_TWILIO_SIDS = {"TWILIO_ACCOUNT_SID": "AC", "TWILIO_MESSAGING_SERVICE_SID": "MG"}


def _validate_twilio(s: Settings) -> None:
    if s.sms_provider == "twilio":
        _require_http("TWILIO_API_URL", s.twilio_api_url)
        for name, value in (("TWILIO_ACCOUNT_SID", s.twilio_account_sid), ("TWILIO_AUTH_TOKEN", s.twilio_auth_token)):
            if not value:
                raise ConfigError(f"{name} is required when WEFT_SMS_PROVIDER=twilio")
        if not s.twilio_messaging_service_sid and not s.twilio_from_number:
            raise ConfigError("TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER is required when "
                              "WEFT_SMS_PROVIDER=twilio")
    for name, value in (("TWILIO_ACCOUNT_SID", s.twilio_account_sid),
                        ("TWILIO_MESSAGING_SERVICE_SID", s.twilio_messaging_service_sid)):
        prefix = _TWILIO_SIDS[name]
        if value and not re.fullmatch(prefix + "[0-9a-fA-F]{32}", value):
            raise ConfigError(f"{name} must be {prefix} followed by 32 hexadecimal digits, as Twilio's console "
                              f"shows it")
    if s.twilio_auth_token and not re.fullmatch("[0-9a-fA-F]{32}", s.twilio_auth_token):
        raise ConfigError("TWILIO_AUTH_TOKEN must be the account's 32-character auth token")
    if s.twilio_from_number:
        try:
            number = phonenumbers.parse(s.twilio_from_number, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number) or not s.twilio_from_number.startswith("+"):
            raise ConfigError(f"TWILIO_FROM_NUMBER must be a phone number in E.164 form such as +14155550100, "
                              f"not {s.twilio_from_number!r}")


def _require_http(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")


def _validate_payments_and_email(s: Settings) -> None:
    if s.email_provider not in EMAIL_PROVIDERS:
        raise ConfigError(f"WEFT_EMAIL_PROVIDER must be one of {', '.join(EMAIL_PROVIDERS)}, not {s.email_provider!r}")
    if s.email_provider == "resend" and not s.resend_api_key:
        raise ConfigError("RESEND_API_KEY is required when WEFT_EMAIL_PROVIDER=resend")
    if s.smtp_tls not in ("starttls", "tls", "none"):
        raise ConfigError(f"SMTP_TLS must be starttls, tls or none, not {s.smtp_tls!r}")
    if s.stripe_secret_key and not s.stripe_webhook_secret:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set")
    _require_http("STRIPE_API_BASE", s.stripe_api_base)
    if not 1 <= s.checkout_min_dollars <= s.checkout_max_dollars:
        raise ConfigError("WEFT_CHECKOUT_MIN_DOLLARS must be at least 1 and not above WEFT_CHECKOUT_MAX_DOLLARS")


def _validate_sending(s: Settings) -> None:
    try:
        ZoneInfo(s.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"WEFT_TIMEZONE must be a time zone name such as UTC or America/New_York, "
                          f"not {s.time_zone!r}") from None
    try:
        quiet_hours(s)
    except ValueError as exc:
        raise ConfigError(f"WEFT_QUIET_HOURS: {exc} (or off)") from None
    try:
        monthly_trigger(s)
    except ValueError as exc:
        raise ConfigError(f"WEFT_MONTHLY_SCHEDULE must be a cron line such as '0 10 1 * *': {exc}") from None


def quiet_hours(s: Settings) -> QuietHours:
    return QuietHours.none() if s.quiet_hours in ("off", "none", "") else QuietHours.parse(s.quiet_hours)


def monthly_trigger(s: Settings) -> CronTrigger:
    return CronTrigger.from_crontab(s.monthly_schedule, timezone=ZoneInfo(s.time_zone))
