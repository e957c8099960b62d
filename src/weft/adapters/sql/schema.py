from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC and hands back aware datetimes, the same on SQLite and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

CLAIMED = sa.text("claimed_by IS NOT NULL")
"""Partial-index condition: only rows a worker holds, so renewing a worker's leases never scans a whole table."""
PENDING = sa.text("processed_at IS NULL")
"""Partial-index condition: only inbound texts not yet applied, so the inbound worker's look-up stays small."""
FAILED = sa.text("status IN ('failed', 'expired') OR delivery_state IN ('undelivered', 'failed')")
"""Partial-index condition: only texts that never reached the phone (OutboxEntry.failed), for the latest failures."""

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("phone", sa.String(20), primary_key=True),
    sa.Column("consent", sa.String(16), nullable=False),
    sa.Column("membership", sa.String(16), nullable=False),
    sa.Column("paid_tier", sa.String(32)),
    sa.Column("email", sa.String(320)),
    sa.Column("stripe_customer_id", sa.String(64)),
    sa.Column("stripe_subscription_id", sa.String(64)),
    sa.Column("consent_changed_at", UtcDateTime()),
    sa.Column("consent_message_id", sa.String(128)),
    sa.Column("last_message", sa.Text()),
    sa.Column("last_message_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("paid_amount_cents", sa.Integer),
    sa.Column("paid_payment_type", sa.String(16)),
    sa.Column("join_link_at", UtcDateTime()),
)

consent_history = sa.Table(
    "consent_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("phone", sa.String(20), nullable=False, index=True),
    sa.Column("consent", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("message_id", sa.String(128)),
    sa.Column("reason", sa.String(200), nullable=False),
)

inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("provider_id", sa.String(128), primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False, index=True),
    sa.Column("text", sa.Text(), nullable=False),
    # Bird's ids before 0007, kept for a Weft of an earlier revision during a rolling deploy; not written since.
    sa.Column("conversation_id", sa.String(128)),
    sa.Column("channel_id", sa.String(128)),
    sa.Column("reply_route", sa.String(300)),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    # The default marks texts stored by a Weft from before the inbound worker (see migration 0006) applied.
    sa.Column("processed_at", UtcDateTime(), server_default=sa.text("'1970-01-01 00:00:00.000000'")),
    sa.Column("error", sa.Text()),
    sa.Index("ix_inbound_messages_pending", "received_at", sqlite_where=PENDING, postgresql_where=PENDING),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False, index=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    # Bird's ids before 0007 (see inbound_messages); not written since.
    sa.Column("conversation_id", sa.String(128)),
    sa.Column("channel_id", sa.String(128)),
    sa.Column("reply_route", sa.String(300)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("provider_id", sa.String(128), index=True),
    sa.Column("error", sa.Text()),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("sent_at", UtcDateTime()),
    sa.Column("lane", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(36)),
    sa.Column("in_doubt", sa.Boolean, nullable=False, default=False),
    sa.Column("possible_duplicate", sa.Boolean, nullable=False, default=False),
    sa.Column("first_attempt_at", UtcDateTime()),
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("journey_id", sa.String(64)),
    sa.Column("campaign_id", sa.String(32)),
    sa.Column("delivery_state", sa.String(16)),
    sa.Column("delivery_error_code", sa.String(32)),
    sa.Column("delivery_at", UtcDateTime()),
    sa.Index("ix_outbox_ready", "status", "lane", "next_attempt_at"),
    sa.Index("ix_outbox_claimed", "claimed_by", sqlite_where=CLAIMED, postgresql_where=CLAIMED),
    sa.Index("ix_outbox_campaign", "campaign_id", "status", "sent_at"),
    sa.Index("ix_outbox_failed", "created_at", "id", sqlite_where=FAILED, postgresql_where=FAILED),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("payment_type", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("checkout_session_id", sa.String(128), unique=True),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("subscription_id", sa.String(64), index=True),
    sa.Column("past_due_notified", sa.Boolean, nullable=False, default=False),
    sa.Column("phone_proven", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

journeys = sa.Table(
    "journeys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("payment_id", sa.String(64), nullable=False, unique=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime()),
    sa.Column("next_run_at", UtcDateTime(), index=True),
    sa.Column("has_failed_step", sa.Boolean, nullable=False, default=False),
    sa.Column("claimed_by", sa.String(36)),
    sa.Column("greeting", sa.String(16)),
    sa.Index("ix_journeys_claimed", "claimed_by", sqlite_where=CLAIMED, postgresql_where=CLAIMED),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("phone", sa.String(20)),
    sa.Column("payment_id", sa.String(64)),
    sa.Column("details", sa.JSON, nullable=False),
)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("processed_at", UtcDateTime(), nullable=False),
)

received_events = sa.Table(
    "received_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("object", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("error", sa.Text()),
    sa.Column("processed_at", UtcDateTime()),
    sa.Column("claimed_by", sa.String(36)),
    sa.Index("ix_received_events_due", "status", "next_attempt_at"),
    sa.Index("ix_received_events_claimed", "claimed_by", sqlite_where=CLAIMED, postgresql_where=CLAIMED),
)

cancellations = sa.Table(
    "subscription_cancellations",
    metadata,
    sa.Column("subscription_id", sa.String(64), primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("error", sa.Text()),
    sa.Column("requested_at", UtcDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(36)),
    sa.Index("ix_cancellations_due", "status", "next_attempt_at"),
    sa.Index("ix_cancellations_claimed", "claimed_by", sqlite_where=CLAIMED, postgresql_where=CLAIMED),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("month", sa.String(7), nullable=False, unique=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cursor", sa.String(20)),
    sa.Column("selected", sa.Integer, nullable=False, default=0),
    sa.Column("skipped", sa.JSON, nullable=False),
    sa.Column("passes", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("next_run_at", UtcDateTime(), index=True),
    sa.Column("claimed_by", sa.String(36)),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(36), nullable=False),
    sa.Column("until", UtcDateTime(), nullable=False),
)

sms_daily_counts = sa.Table(
    "sms_daily_counts",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("sent", sa.Integer, nullable=False),
)

delivery_receipts = sa.Table(
    "delivery_receipts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider_id", sa.String(128), nullable=False, index=True),
    sa.Column("outbox_id", sa.String(64), index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(32)),
    sa.Column("at", UtcDateTime()),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)

sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.String(64)),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

mirror_queue = sa.Table(
    "mirror_queue",
    metadata,
    # `<kind>:<key>`: one entry per record, however often it changes before its copy is pushed.
    sa.Column("id", sa.String(96), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("record_key", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("queued_at", UtcDateTime(), nullable=False),
    sa.Column("first_attempt_at", UtcDateTime()),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("claimed_by", sa.String(36)),
    sa.Column("error", sa.Text()),
    sa.Column("failed_at", UtcDateTime()),
    sa.Index("ix_mirror_queue_due", "next_attempt_at"),
    sa.Index("ix_mirror_queue_claimed", "claimed_by", sqlite_where=CLAIMED, postgresql_where=CLAIMED),
)

instance_values = sa.Table(
    "instance_values",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

test_mode_objects = sa.Table(
    "test_mode_objects",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("lookup", sa.String(320)),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_test_mode_objects_lookup", "kind", "lookup"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("since", UtcDateTime()),
    sa.Column("checked_at", UtcDateTime()),
    sa.Column("notified_at", UtcDateTime()),
    # {campaign id: [progress, ISO time it was first seen at that value]}, for the stall rule.
    sa.Column("progress", sa.JSON, nullable=False),
)
