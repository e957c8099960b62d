from __future__ import annotations

import logging

from weft.adapters.sql_migrate import migrate
from weft.config import Settings, load_settings
from weft.containers import Container


def bootstrap(settings: Settings | None = None, run_migrations: bool = True) -> Container:
    """A container for these settings (read from the environment when not given), schema migrated."""
    container = Container(settings=settings or load_settings())
    if run_migrations:
        migrate(container.engine())
    return container


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
