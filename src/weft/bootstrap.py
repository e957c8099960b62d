from __future__ import annotations

import logging
import re
import secrets

import attrs
import sqlalchemy as sa
from dependency_injector import providers

from weft.adapters.sql.instance import LINK_SECRET, SERVE_URL, kept_value, recall, remember
from weft.adapters.sql.migrate import migrate
from weft.config import Settings, load_settings
from weft.containers import Container
from weft.domain.phone import mask_phones_in

log = logging.getLogger(__name__)


def bootstrap(settings: Settings | None = None, run_migrations: bool = True, listening: str | None = None) -> Container:
    """A container for these settings (read from the environment when not given), schema migrated, with what the
    installation keeps in its database filled in: the link secret, and the address `weft serve` listens on
    (`listening`, given by `weft serve` itself) when WEFT_PUBLIC_URL is unset."""
    settings = settings or load_settings()
    container = Container(settings=settings)
    _warn_about_open_doors(settings)
    if run_migrations:
        migrate(container.engine())
        container.settings.override(providers.Object(_kept_settings(container.engine(), settings, listening)))
    return container


def _kept_settings(engine: sa.Engine, settings: Settings, listening: str | None) -> Settings:
    link_secret, public_url = settings.link_secret, settings.public_url
    if not link_secret:
        link_secret = kept_value(engine, LINK_SECRET, lambda: secrets.token_urlsafe(32))
        level = logging.INFO if settings.test_mode_checkout else logging.WARNING
        log.log(level, "WEFT_LINK_SECRET is not set: links are signed with a secret generated once and kept in the "
                       "database; in production set WEFT_LINK_SECRET")
    if not settings.public_url_configured:
        if listening is not None:
            remember(engine, SERVE_URL, listening)
        public_url = listening or recall(engine, SERVE_URL) or public_url
    return attrs.evolve(settings, link_secret=link_secret, public_url=public_url)


def listen_url(host: str, port: int) -> str:
    """The address links use when WEFT_PUBLIC_URL is unset: where `weft serve` listens (this machine when it
    listens on every interface)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


_LINK_TOKEN = re.compile(r"([?&]t=)[^&\s\"']+")


def _warn_about_open_doors(settings: Settings) -> None:
    if settings.sms_provider == "bird" and not settings.bird_signing_key:
        log.warning("BIRD_SIGNING_KEY is not set: /bird-sms-webhook accepts unsigned posts, so anyone who finds "
                    "it can text as any number (and STOP or UNSUB their membership)")


class MaskPhones(logging.Filter):
    """Rewrites each record so no full phone number or link token reaches a log, whoever logged it (uvicorn's
    access log too), tracebacks included: database errors print their parameters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            record.exc_info, record.exc_text = None, None
        record.msg = _LINK_TOKEN.sub(r"\1***", mask_phones_in(message))
        record.args = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskPhones) for f in handler.filters):
            handler.addFilter(MaskPhones())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("stripe").setLevel(logging.WARNING)
