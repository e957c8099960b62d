"""Databases in the field sit at every earlier revision; starting the app must bring each one to head intact."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import MIGRATIONS, migrate
from weft.adapters.sql.schema import metadata

# Naive UTC, as the columns store it.
AT = datetime(2026, 10, 3, 9, 30)
AT_UTC = AT.replace(tzinfo=UTC)
PHONE = "+14155550123"
FAILED = "journey-failed"
CLEAN = "journey-clean"
FAILED_STEPS = {
    "payment_processed": {"at": "2026-10-03T09:30:00+00:00", "ok": True, "detail": "", "transient": False},
    "database_updated": {"at": "2026-10-03T09:30:01+00:00", "ok": True, "detail": "", "transient": False},
    "email_sent": {"at": "2026-10-03T09:30:02+00:00", "ok": False, "detail": "SMTP timed out", "transient": True},
}
CLEAN_STEPS = {
    "payment_processed": {"at": "2026-10-03T09:30:00+00:00", "ok": True, "detail": "", "transient": False},
    "database_updated": {"at": "2026-10-03T09:30:01+00:00", "ok": True, "detail": "", "transient": False},
    "email_sent": {"at": "2026-10-03T09:30:02+00:00", "ok": True, "detail": "", "transient": False},
}
EARLIER = ["0001", "0002", "0002-edited"]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def _downgrade_to(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def _drop_has_failed_step_as_the_original_0002_did(engine: sa.Engine) -> None:
    # 0002 as it first landed created journeys without has_failed_step; the file now holds the edit that added it
    # (a landed migration is not edited again), so a database of the original kind is made by taking it away.
    with engine.begin() as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("journeys", recreate="always") as batch_op:
            batch_op.drop_column("has_failed_step")


def _table(connection: sa.Connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def _subscriber(revision: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "phone": PHONE, "consent": "opted_in", "membership": "member", "paid_tier": "supporter",
        "consent_changed_at": AT, "consent_message_id": "bird-msg-1", "last_message": "JOIN", "last_message_at": AT,
        "created_at": AT, "updated_at": AT,
    }
    if revision != "0001":
        row |= {"email": "ada@example.com", "stripe_customer_id": "cus_123", "stripe_subscription_id": "sub_123"}
    return row


OUTBOX = {
    "id": "out-1", "phone": PHONE, "text": "Welcome to weft!", "kind": "welcome", "conversation_id": "conv-1",
    "channel_id": "ch-default", "status": "sent", "attempts": 1, "next_attempt_at": None, "provider_id": "bird-out-1",
    "error": None, "created_at": AT, "sent_at": AT,
}
INBOUND = {"provider_id": "bird-in-1", "phone": PHONE, "text": "JOIN", "conversation_id": "conv-1",
           "channel_id": "ch-default", "received_at": AT}
PAYMENTS = [
    {
        "id": f"pay-{n}", "phone": PHONE, "email": "ada@example.com", "tier": "supporter", "amount_cents": 1500,
        "payment_type": "subscription", "status": "paid", "checkout_session_id": f"cs_{n}", "customer_id": "cus_123",
        "subscription_id": "sub_123", "past_due_notified": False, "phone_proven": True, "created_at": AT,
        "updated_at": AT,
    }
    for n in (1, 2)
]


def _journeys(edited: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": FAILED, "payment_id": "pay-1", "steps": FAILED_STEPS, "started_at": AT, "completed_at": None,
         "next_run_at": AT},
        {"id": CLEAN, "payment_id": "pay-2", "steps": CLEAN_STEPS, "started_at": AT, "completed_at": AT,
         "next_run_at": None},
    ]
    if edited:
        # Whatever the app wrote: the wrong way round here, so only a real backfill can get them right.
        rows[0]["has_failed_step"] = False
        rows[1]["has_failed_step"] = True
    return rows


def _database_at(engine: sa.Engine, start: str) -> None:
    """A fresh database at an earlier revision, holding the rows that revision had."""
    revision = start.removesuffix("-edited")
    _upgrade_to(engine, revision)
    if start == "0002":
        _drop_has_failed_step_as_the_original_0002_did(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(_table(connection, "subscribers")), [_subscriber(revision)])
        connection.execute(sa.insert(_table(connection, "outbox")), [OUTBOX])
        connection.execute(sa.insert(_table(connection, "inbound_messages")), [INBOUND])
        if revision == "0001":
            return
        connection.execute(sa.insert(_table(connection, "payments")), PAYMENTS)
        journeys = _table(connection, "journeys")
        # Reflection types the column as JSON on both SQLite and PostgreSQL, so the dict is stored as JSON.
        assert isinstance(journeys.c.steps.type, sa.JSON)
        connection.execute(sa.insert(journeys), _journeys(edited=start.endswith("-edited")))


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _schema_mismatches(engine: sa.Engine) -> list[str]:
    """Every table and column of the application's metadata, with its nullability, compared with the database."""
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    mismatches: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in tables:
            mismatches.append(f"table {table.name} is missing")
            continue
        found = {column["name"]: column["nullable"] for column in inspector.get_columns(table.name)}
        wanted = {column.name: column.nullable for column in table.columns}
        if found != wanted:
            mismatches.append(f"{table.name}: database has {found}, schema has {wanted}")
    return mismatches


def _rows(engine: sa.Engine, table: sa.Table, *order_by: sa.ColumnElement[Any]) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(table).order_by(*order_by))]


@pytest.mark.parametrize("start", EARLIER)
def test_a_database_at_an_earlier_revision_migrates_to_head_with_its_rows_intact(
    engine: sa.Engine, start: str
) -> None:
    _database_at(engine, start)
    assert _current_revision(engine) != _head()

    migrate(engine)

    assert _current_revision(engine) == _head()
    assert _schema_mismatches(engine) == []
    t = metadata.tables
    subscribers = _rows(engine, t["subscribers"])
    assert [(s["phone"], s["membership"], s["paid_tier"], s["last_message"]) for s in subscribers] == [
        (PHONE, "member", "supporter", "JOIN")
    ]
    expected_email = None if start == "0001" else "ada@example.com"
    assert subscribers[0]["email"] == expected_email
    outbox = _rows(engine, t["outbox"])
    assert [(o["id"], o["text"], o["status"], o["attempts"]) for o in outbox] == [
        ("out-1", "Welcome to weft!", "sent", 1)
    ]
    # Texts stored before the inbound worker existed were applied when they arrived: none waits to be applied.
    inbound = _rows(engine, t["inbound_messages"])
    assert [(m["provider_id"], m["processed_at"], m["error"]) for m in inbound] == [("bird-in-1", AT_UTC, None)]
    # A Weft from before 0006, still running during a rolling deploy, applies its texts as it stores them and names
    # no processed_at: the column's default marks them applied, so the inbound worker does not apply them again.
    with engine.begin() as connection:
        connection.execute(sa.insert(_table(connection, "inbound_messages")), [{**INBOUND, "provider_id": "old-2"}])
    waiting = {m["provider_id"]: m["processed_at"] for m in _rows(engine, t["inbound_messages"])}
    assert waiting["old-2"] is not None
    payments = _rows(engine, t["payments"], t["payments"].c.id)
    journeys = _rows(engine, t["journeys"], t["journeys"].c.id)
    if start == "0001":
        assert (payments, journeys) == ([], [])
        return
    assert [(p["id"], p["status"], p["amount_cents"], p["phone_proven"]) for p in payments] == [
        ("pay-1", "paid", 1500, True), ("pay-2", "paid", 1500, True)
    ]
    assert [(j["id"], j["payment_id"], j["steps"]) for j in journeys] == [
        (CLEAN, "pay-2", CLEAN_STEPS), (FAILED, "pay-1", FAILED_STEPS)
    ]
    assert {j["id"]: j["has_failed_step"] for j in journeys} == {CLEAN: False, FAILED: True}


def test_a_journey_inserted_without_has_failed_step_after_migrating_from_the_original_0002_is_not_failed(
    engine: sa.Engine,
) -> None:
    _database_at(engine, "0002")
    migrate(engine)

    # A writer that predates the column (an old process still running during a rolling start) leaves it out.
    before = sa.table("journeys", sa.column("id"), sa.column("payment_id"), sa.column("steps", sa.JSON()),
                      sa.column("started_at"))
    journeys = metadata.tables["journeys"]
    with engine.begin() as connection:
        connection.execute(sa.insert(before), [{"id": "journey-new", "payment_id": "pay-new", "steps": {},
                                                "started_at": AT}])
        stored = connection.scalar(sa.select(journeys.c.has_failed_step).where(journeys.c.id == "journey-new"))
    assert stored is False


def test_downgrading_below_has_failed_step_drops_it_and_upgrading_again_recomputes_it(engine: sa.Engine) -> None:
    _database_at(engine, "0002")
    migrate(engine)

    _downgrade_to(engine, "0002")
    assert "has_failed_step" not in {c["name"] for c in sa.inspect(engine).get_columns("journeys")}
    migrate(engine)

    journeys = metadata.tables["journeys"]
    with engine.connect() as connection:
        rows = {row.id: row.has_failed_step for row in connection.execute(sa.select(journeys))}
    assert rows == {CLEAN: False, FAILED: True}
    assert _current_revision(engine) == _head()


def test_texts_waiting_at_0006_keep_their_bird_route_as_a_reply_route_and_finished_ones_need_none(
    engine: sa.Engine,
) -> None:
    _upgrade_to(engine, "0006")
    with engine.begin() as connection:
        outbox = _table(connection, "outbox")
        connection.execute(sa.insert(outbox), [
            OUTBOX,
            {**OUTBOX, "id": "reply:waiting", "status": "pending", "next_attempt_at": AT, "provider_id": None,
             "sent_at": None, "conversation_id": "conv-9", "channel_id": "ch-9"},
            {**OUTBOX, "id": "care:waiting", "status": "pending", "next_attempt_at": AT, "provider_id": None,
             "sent_at": None, "conversation_id": None, "channel_id": None},
        ])
        connection.execute(sa.insert(_table(connection, "inbound_messages")), [
            {**INBOUND, "processed_at": AT},
            {**INBOUND, "provider_id": "bird-in-waiting", "conversation_id": None, "channel_id": "ch 7&x",
             "processed_at": None},
        ])

    migrate(engine)

    t = metadata.tables
    routes = {o["id"]: o["reply_route"] for o in _rows(engine, t["outbox"])}
    assert routes == {"out-1": None, "reply:waiting": "channel=ch-9&conversation=conv-9", "care:waiting": None}
    inbound = {m["provider_id"]: m["reply_route"] for m in _rows(engine, t["inbound_messages"])}
    assert inbound == {"bird-in-1": None, "bird-in-waiting": "channel=ch+7%26x"}
    assert {o["id"]: o["delivery_state"] for o in _rows(engine, t["outbox"])} == dict.fromkeys(routes)


def test_paid_members_at_0007_get_the_amount_and_cadence_of_the_payment_that_made_them_paid(
    engine: sa.Engine,
) -> None:
    _upgrade_to(engine, "0007")
    payment = {**PAYMENTS[0], "tier": "10", "amount_cents": 1000, "payment_type": "monthly", "status": "active"}
    gift = {**PAYMENTS[1], "tier": "25", "amount_cents": 2500, "payment_type": "one_time", "status": "completed",
            "subscription_id": None, "created_at": AT.replace(hour=10)}
    with engine.begin() as connection:
        connection.execute(sa.insert(_table(connection, "subscribers")), [
            {**_subscriber("0007"), "membership": "paid", "paid_tier": "10"},
            {**_subscriber("0007"), "phone": "+14155550199", "membership": "free", "paid_tier": None,
             "stripe_subscription_id": None},
        ])
        connection.execute(sa.insert(_table(connection, "payments")), [payment, gift])
        connection.execute(sa.insert(_table(connection, "journeys")), _journeys(edited=True)[:1])

    migrate(engine)

    t = metadata.tables
    members = {s["phone"]: (s["paid_amount_cents"], s["paid_payment_type"], s["join_link_at"])
               for s in _rows(engine, t["subscribers"])}
    assert members == {PHONE: (1000, "monthly", None), "+14155550199": (None, None, None)}
    assert [j["greeting"] for j in _rows(engine, t["journeys"])] == [None]  # read as the welcome it was
    assert _schema_mismatches(engine) == []
    assert [r["name"] for r in _rows(engine, t["instance_values"])] == []


def test_downgrading_below_0009_drops_what_it_added(engine: sa.Engine) -> None:
    migrate(engine)

    _downgrade_to(engine, "0007")

    inspector = sa.inspect(engine)
    assert not {"instance_values", "test_mode_objects"} & set(inspector.get_table_names())
    assert "paid_amount_cents" not in {c["name"] for c in inspector.get_columns("subscribers")}
    assert "greeting" not in {c["name"] for c in inspector.get_columns("journeys")}
    migrate(engine)
    assert _current_revision(engine) == _head()
