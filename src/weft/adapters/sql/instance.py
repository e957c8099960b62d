"""Values one Weft installation keeps in its database, such as a generated secret: every process (serve, worker,
the CLI) and every restart reads the same one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert

LINK_SECRET = "link_secret"
SERVE_URL = "serve_url"
_v = t.instance_values.c


def kept_value(engine: sa.Engine, name: str, make: Callable[[], str]) -> str:
    """The value stored under `name`, stored first (made by `make`) when there is none; two processes starting at
    once agree on the first one stored."""
    with engine.begin() as connection:
        insert = dialect_insert(connection.dialect.name)(t.instance_values)
        connection.execute(insert.values(name=name, value=make(), updated_at=datetime.now(UTC))
                           .on_conflict_do_nothing(index_elements=["name"]))
        return str(connection.execute(sa.select(_v.value).where(_v.name == name)).scalar_one())


def remember(engine: sa.Engine, name: str, value: str) -> None:
    """Store the value under `name`, replacing what was there."""
    with engine.begin() as connection:
        insert = dialect_insert(connection.dialect.name)(t.instance_values)
        values = {"value": value, "updated_at": datetime.now(UTC)}
        connection.execute(insert.values(name=name, **values).on_conflict_do_update(index_elements=["name"],
                                                                                     set_=values))


def recall(engine: sa.Engine, name: str) -> str | None:
    with engine.connect() as connection:
        found = connection.execute(sa.select(_v.value).where(_v.name == name)).scalar()
    return None if found is None else str(found)
