from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs
from dotenv import dotenv_values

from weft.adapters.bird_sms import DEFAULT_BIRD_API_URL

SMS_PROVIDERS = ("console", "bird")
DEFAULT_DATABASE_URL = "sqlite:///weft.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


@attrs.frozen
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = DEFAULT_PUBLIC_URL
    sms_provider: str = "console"
    bird_api_url: str = DEFAULT_BIRD_API_URL
    bird_workspace_id: str = ""
    bird_channel_id: str = ""
    bird_access_key_id: str = ""
    bird_api_key: str = attrs.field(default="", repr=False)
    bird_signing_key: str = attrs.field(default="", repr=False)
    admin_token: str = attrs.field(default="", repr=False)
    join_words: tuple[str, ...] = ("LOVE",)
    provider_sends_keyword_replies: bool = False
    program_name: str = "The Weft"
    support_contact: str = "support@example.org"
    default_region: str = "US"


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
        sms_provider=get("WEFT_SMS_PROVIDER", "console").lower(),
        bird_api_url=get("BIRD_API_URL", DEFAULT_BIRD_API_URL),
        bird_workspace_id=get("BIRD_WORKSPACE_ID"),
        bird_channel_id=get("BIRD_CHANNEL_ID"),
        bird_access_key_id=get("BIRD_ACCESS_KEY_ID"),
        bird_api_key=get("BIRD_API_KEY"),
        bird_signing_key=get("BIRD_SIGNING_KEY"),
        admin_token=get("WEFT_ADMIN_TOKEN"),
        join_words=tuple(w.strip().upper() for w in get("WEFT_JOIN_WORDS", "LOVE").split(",") if w.strip()),
        provider_sends_keyword_replies=_flag(get("WEFT_PROVIDER_SENDS_KEYWORD_REPLIES", "false")),
        program_name=get("WEFT_PROGRAM_NAME", "The Weft"),
        support_contact=get("WEFT_SUPPORT_CONTACT", "support@example.org"),
        default_region=get("WEFT_DEFAULT_REGION", "US").upper(),
    )


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"WEFT_PROVIDER_SENDS_KEYWORD_REPLIES must be true or false, not {value!r}")


def _validate(s: Settings) -> None:
    if s.sms_provider not in SMS_PROVIDERS:
        raise ConfigError(f"WEFT_SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, not {s.sms_provider!r}")
    _require_http("WEFT_PUBLIC_URL", s.public_url)
    if not s.join_words:
        raise ConfigError("WEFT_JOIN_WORDS must name at least one word")
    if s.sms_provider == "bird":
        _require_http("BIRD_API_URL", s.bird_api_url)
        for name, value in (("BIRD_API_KEY", s.bird_api_key), ("BIRD_WORKSPACE_ID", s.bird_workspace_id),
                            ("BIRD_CHANNEL_ID", s.bird_channel_id)):
            if not value:
                raise ConfigError(f"{name} is required when WEFT_SMS_PROVIDER=bird")


def _require_http(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
