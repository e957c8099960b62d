from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from weft.adapters.sql import schema as t
from weft.adapters.sql.prepared import Prepared
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership, Subscriber

# Built once: SQLAlchemy then reuses each statement's cache key and compiled form instead of rebuilding them.
# FOR UPDATE (PostgreSQL; SQLite has one writer anyway): instances must not overwrite each other's read-modify-write.
_GET = sa.select(t.subscribers).where(t.subscribers.c.phone == sa.bindparam("phone")).with_for_update()
_GET_MANY = sa.select(t.subscribers).where(t.subscribers.c.phone.in_(sa.bindparam("phones", expanding=True)))
# Sorted numbers, locked in that order: two transactions locking overlapping sets cannot deadlock.
_GET_MANY_FOR_UPDATE = _GET_MANY.order_by(t.subscribers.c.phone).with_for_update()
_i = t.inbound_messages.c
_PENDING_ORDER = (_i.received_at, _i.provider_id)
# The worker skips texts another instance holds (PostgreSQL); an opt-out waits for its number's earlier texts.
_PENDING = (sa.select(t.inbound_messages).where(_i.processed_at.is_(None)).order_by(*_PENDING_ORDER)
            .with_for_update(skip_locked=True))
_PENDING_FROM = (sa.select(t.inbound_messages).where(_i.processed_at.is_(None), _i.phone == sa.bindparam("phone"))
                 .order_by(*_PENDING_ORDER).with_for_update())
_MARK_PROCESSED = (t.inbound_messages.update().where(_i.provider_id.in_(sa.bindparam("ids", expanding=True)))
                   .values(processed_at=sa.bindparam("at"), error=sa.bindparam("error")))
_INBOUND_KEYS = ("provider_id", "phone", "text", "conversation_id", "channel_id", "received_at")
_CONSENT_KEYS = ("phone", "consent", "at", "message_id", "reason")
CONSENT_VERSION = sa.select(sa.func.coalesce(sa.func.max(t.consent_history.c.id), 0))


class SqlMembers:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._writes = writes(connection.dialect)

    def get(self, phone: PhoneNumber) -> Subscriber | None:
        row = self._c.execute(_GET, {"phone": phone.e164}).first()
        return None if row is None else subscriber_from_row(row)

    def get_many(self, phones: Collection[PhoneNumber], for_update: bool = False) -> dict[str, Subscriber]:
        if not phones:
            return {}
        query = _GET_MANY_FOR_UPDATE if for_update else _GET_MANY
        rows = self._c.execute(query, {"phones": sorted({p.e164 for p in phones})})
        return {row.phone: subscriber_from_row(row) for row in rows}

    def consent_version(self) -> int:
        return int(self._c.execute(CONSENT_VERSION).scalar() or 0)

    def save(self, subscriber: Subscriber) -> None:
        self.save_many([subscriber])

    def save_many(self, subscribers: Sequence[Subscriber]) -> None:
        if not subscribers:
            return
        self._writes.save_subscriber.execute_many(self._c, [subscriber_values(s) for s in subscribers])
        changes = [
            {"phone": s.phone.e164, "consent": c.consent.value, "at": c.at, "message_id": c.message_id,
             "reason": c.reason}
            for s in subscribers for c in s.changes
        ]
        if changes:
            self._writes.add_consent_change.execute_many(self._c, changes)
        for subscriber in subscribers:
            subscriber.changes.clear()


class SqlInbound:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._writes = writes(connection.dialect)

    def record(self, message: InboundSms, at: datetime) -> bool:
        row = {
            "provider_id": message.provider_id, "phone": message.sender.e164, "text": message.text,
            "conversation_id": message.conversation_id, "channel_id": message.channel_id, "received_at": at,
        }
        return self._writes.record_inbound.execute(self._c, row) == 1

    def pending(self, phone: PhoneNumber | None = None, limit: int | None = None) -> list[InboundSms]:
        query = _PENDING_FROM if phone is not None else _PENDING
        rows = self._c.execute(query.limit(limit), {"phone": phone.e164} if phone is not None else {})
        return [
            InboundSms(row.provider_id, PhoneNumber(row.phone), row.text, conversation_id=row.conversation_id,
                       channel_id=row.channel_id, received_at=row.received_at)
            for row in rows
        ]

    def mark_processed(self, provider_ids: Sequence[str], at: datetime, error: str | None = None) -> None:
        if provider_ids:
            self._c.execute(_MARK_PROCESSED, {"ids": list(provider_ids), "at": at, "error": error})


@attrs.frozen
class Writes:
    """The inbound webhook's writes, compiled once per dialect and run straight through the driver."""

    record_inbound: Prepared
    save_subscriber: Prepared
    add_consent_change: Prepared


_WRITES: dict[str, Writes] = {}


def writes(dialect: sa.Dialect) -> Writes:
    if dialect.name not in _WRITES:
        insert = dialect_insert(dialect.name)
        inbound = insert(t.inbound_messages).on_conflict_do_nothing(index_elements=["provider_id"])
        subscriber = insert(t.subscribers)
        upsert = subscriber.on_conflict_do_update(
            index_elements=["phone"],
            set_={c.name: subscriber.excluded[c.name] for c in t.subscribers.c if not c.primary_key},
        )
        _WRITES[dialect.name] = Writes(
            record_inbound=Prepared(inbound, dialect, _INBOUND_KEYS),
            save_subscriber=Prepared(upsert, dialect, [c.name for c in t.subscribers.c]),
            add_consent_change=Prepared(t.consent_history.insert(), dialect, _CONSENT_KEYS),
        )
    return _WRITES[dialect.name]


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
