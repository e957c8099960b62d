from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def create_engine(url: str) -> sa.Engine:
    """An engine for the store: SQLite in WAL with durable commits, or PostgreSQL through psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url, pool_pre_ping=True)
        sa.event.listen(engine, "connect", _postgres_settings)
        return engine
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _postgres_settings(dbapi_connection: Any, _record: Any) -> None:
    # Plan every statement for the table as it is now: psycopg prepares repeated statements, and a generic plan
    # made while the outbox was nearly empty (a sequential scan) would stay in use once a monthly run has put
    # 100,000 rows in it, wherever autovacuum is off or has not analysed the table yet.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide where transactions begin (SAVEPOINTs need it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # The writer takes the write lock up front so two processes never deadlock upgrading a read lock.
    immediate = connection.get_execution_options().get("weft_writer", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
