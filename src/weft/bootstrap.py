from __future__ import annotations

import logging
import re

from weft.adapters.sql.migrate import migrate
from weft.config import Settings, load_settings
from weft.containers import Container
from weft.domain.phone import mask_phones_in

log = logging.getLogger(__name__)


def bootstrap(settings: Settings | None = None, run_migrations: bool = True) -> Container:
    """A container for these settings (read from the environment when not given), schema migrated."""
    container = Container(settings=settings or load_settings())
    _warn_about_open_doors(container.settings())
    if run_migrations:
        migrate(container.engine())
    return container


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
