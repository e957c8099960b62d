from __future__ import annotations

import logging
import re

from weft.adapters.sql_migrate import migrate
from weft.config import Settings, load_settings
from weft.containers import Container
from weft.domain.phone import mask_phones_in


def bootstrap(settings: Settings | None = None, run_migrations: bool = True) -> Container:
    """A container for these settings (read from the environment when not given), schema migrated."""
    container = Container(settings=settings or load_settings())
    if run_migrations:
        migrate(container.engine())
    return container


_LINK_TOKEN = re.compile(r"([?&]t=)[^&\s\"']+")


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
