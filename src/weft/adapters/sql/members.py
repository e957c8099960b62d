from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from weft.adapters.sql import schema as t
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership, Subscriber

# Built once: SQLAlchemy then reuses each statement's cache key and compiled form instead of rebuilding them.
# FOR UPDATE (PostgreSQL; SQLite has one writer anyway): instances must not overwrite each other's read-modify-write.
_GET = sa.select(t.subscribers).where(t.subscribers.c.phone == sa.bindparam("phone")).with_for_update()
_ADD_CONSENT_CHANGE = t.consent_history.insert()
CONSENT_VERSION = sa.select(sa.func.coalesce(sa.func.max(t.consent_history.c.id), 0))


class SqlMembers:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._upserts = upserts(connection.dialect.name)

    def get(self, phone: PhoneNumber) -> Subscriber | None:
        row = self._c.execute(_GET, {"phone": phone.e164}).first()
        return None if row is None else subscriber_from_row(row)

    def get_many(self, phones: Collection[PhoneNumber]) -> dict[str, Subscriber]:
        if not phones:
            return {}
        query = sa.select(t.subscribers).where(t.subscribers.c.phone.in_([p.e164 for p in phones]))
        return {row.phone: subscriber_from_row(row) for row in self._c.execute(query)}

    def consent_version(self) -> int:
        return int(self._c.execute(CONSENT_VERSION).scalar() or 0)

    def save(self, subscriber: Subscriber) -> None:
        self._c.execute(self._upserts.save_subscriber, subscriber_values(subscriber))
        if subscriber.changes:
            self._c.execute(_ADD_CONSENT_CHANGE, [
                {"phone": subscriber.phone.e164, "consent": c.consent.value, "at": c.at, "message_id": c.message_id,
                 "reason": c.reason}
                for c in subscriber.changes
            ])
            subscriber.changes.clear()


class SqlInbound:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._upserts = upserts(connection.dialect.name)

    def record(self, message: InboundSms, at: datetime) -> bool:
        row = {
            "provider_id": message.provider_id, "phone": message.sender.e164, "text": message.text,
            "conversation_id": message.conversation_id, "channel_id": message.channel_id, "received_at": at,
        }
        # RETURNING, not rowcount: psycopg reports -1 for this statement through SQLAlchemy.
        return self._c.execute(self._upserts.record_inbound, row).first() is not None


@attrs.frozen
class Upserts:
    """The dialect-specific INSERT ... ON CONFLICT statements, executed with one dict of values each."""

    record_inbound: sa.Executable
    save_subscriber: sa.Executable


@functools.cache
def upserts(dialect_name: str) -> Upserts:
    """The upserts for a dialect, built once per process."""
    insert = dialect_insert(dialect_name)
    inbound = insert(t.inbound_messages).on_conflict_do_nothing(index_elements=["provider_id"])
    subscriber = insert(t.subscribers)
    return Upserts(
        record_inbound=inbound.returning(t.inbound_messages.c.provider_id),
        save_subscriber=subscriber.on_conflict_do_update(
            index_elements=["phone"],
            set_={c.name: subscriber.excluded[c.name] for c in t.subscribers.c if not c.primary_key},
        ),
    )


def dialect_insert(dialect_name: str) -> Any:
    """The INSERT construct with ON CONFLICT for this dialect."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def subscriber_values(s: Subscriber) -> dict[str, Any]:
    return {
        "phone": s.phone.e164, "consent": s.consent.value, "membership": s.membership.value,
        "paid_tier": s.paid_tier, "email": s.email, "stripe_customer_id": s.stripe_customer_id,
        "stripe_subscription_id": s.stripe_subscription_id, "consent_changed_at": s.consent_changed_at,
        "consent_message_id": s.consent_message_id, "last_message": s.last_message,
        "last_message_at": s.last_message_at, "created_at": s.created_at, "updated_at": s.updated_at,
    }


def subscriber_from_row(row: sa.Row[Any]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        phone=PhoneNumber(m["phone"]), created_at=m["created_at"], updated_at=m["updated_at"],
        consent=Consent(m["consent"]), membership=Membership(m["membership"]), paid_tier=m["paid_tier"],
        email=m["email"], stripe_customer_id=m["stripe_customer_id"],
        stripe_subscription_id=m["stripe_subscription_id"],
        consent_changed_at=m["consent_changed_at"], consent_message_id=m["consent_message_id"],
        last_message=m["last_message"], last_message_at=m["last_message_at"],
    )
