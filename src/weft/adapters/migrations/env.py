from __future__ import annotations

from alembic import context

from weft.adapters.sql.schema import metadata

# Called from weft.adapters.sql.migrate with a live connection; no INI logging config, so the
# application's logging is left as it is.
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
