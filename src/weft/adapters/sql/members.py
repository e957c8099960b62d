from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from weft.adapters.sql import schema as t
from weft.adapters.sql.prepared import Prepared
from weft.application.unit_of_work import MirrorKind, MirrorQueue
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership, Subscriber
from weft.domain.tiers import PaymentType

# Built once: SQLAlchemy then reuses each statement's cache key and compiled form instead of rebuilding them.
# FOR UPDATE (PostgreSQL; SQLite has one writer anyway): instances must not overwrite each other's read-modify-write.
_GET = sa.select(t.subscribers).where(t.subscribers.c.phone == sa.bindparam("phone")).with_for_update()
_GET_MANY = sa.select(t.subscribers).where(t.subscribers.c.phone.in_(sa.bindparam("phones", expanding=True)))
# Sorted numbers, locked in that order: two transactions locking overlapping sets cannot deadlock.
_GET_MANY_FOR_UPDATE = _GET_MANY.order_by(t.subscribers.c.phone).with_for_update()
_i = t.inbound_messages.c
_PENDING_ORDER = (_i.received_at, _i.provider_id)
_PENDING = sa.select(t.inbound_messages).where(_i.processed_at.is_(None)).order_by(*_PENDING_ORDER)
_PENDING_OF = _PENDING.where(_i.phone.in_(sa.bindparam("phones", expanding=True)))
# PostgreSQL advisory locks, one per number in Weft's own namespace (the first key), held to the end of the
# transaction: instances applying texts take turns per number, so each number's texts apply in order.
_APPLIER_LOCKS = 7301
_HOLD = sa.text(f"SELECT pg_advisory_xact_lock({_APPLIER_LOCKS}, hashtext(:phone))")
_TRY_HOLD = sa.text(f"SELECT pg_try_advisory_xact_lock({_APPLIER_LOCKS}, hashtext(:phone))")
_MARK_PROCESSED = (t.inbound_messages.update().where(_i.provider_id.in_(sa.bindparam("ids", expanding=True)))
                   .values(processed_at=sa.bindparam("at"), error=sa.bindparam("error")))
_INBOUND_KEYS = ("provider_id", "phone", "text", "reply_route", "received_at", "processed_at")
_CONSENT_KEYS = ("phone", "consent", "at", "message_id", "reason")
CONSENT_VERSION = sa.select(sa.func.coalesce(sa.func.max(t.consent_history.c.id), 0))


class SqlMembers:
    def __init__(self, connection: sa.Connection, mirror: MirrorQueue | None = None) -> None:
        self._c = connection
        self._writes = writes(connection.dialect)
        self._mirror = mirror

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
        if self._mirror is not None:
            self._mirror.changed(MirrorKind.NUMBER, [s.phone.e164 for s in subscribers],
                                 max(s.updated_at for s in subscribers))


class SqlInbound:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._writes = writes(connection.dialect)

    def record(self, message: InboundSms, at: datetime) -> bool:
        row = {
            "provider_id": message.provider_id, "phone": message.sender.e164, "text": message.text,
            "reply_route": message.reply_route, "received_at": at,
            "processed_at": None,  # waiting for the inbound worker (NULL, not the column's default)
        }
        return self._writes.record_inbound.execute(self._c, row) == 1

    def pending(self, phones: Collection[PhoneNumber] | None = None, limit: int | None = None) -> list[InboundSms]:
        if phones is not None and not phones:
            return []
        query = _PENDING_OF if phones is not None else _PENDING
        rows = self._c.execute(query.limit(limit), {"phones": sorted({p.e164 for p in phones})} if phones else {})
        return [
            InboundSms(row.provider_id, PhoneNumber(row.phone), row.text, reply_route=row.reply_route,
                       received_at=row.received_at)
            for row in rows
        ]

    def hold(self, phones: Sequence[PhoneNumber], wait: bool) -> list[PhoneNumber]:
        ordered = sorted(set(phones), key=lambda p: p.e164)  # one order for every transaction: no lock cycle
        if self._c.dialect.name != "postgresql":
            return ordered  # SQLite: one writer, so one applier at a time already
        if wait:
            for phone in ordered:
                self._c.execute(_HOLD, {"phone": phone.e164})
            return ordered
        return [phone for phone in ordered if self._c.execute(_TRY_HOLD, {"phone": phone.e164}).scalar()]

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
        "paid_amount_cents": s.paid_amount_cents,
        "paid_payment_type": s.paid_payment_type.value if s.paid_payment_type else None,
        "join_link_at": s.join_link_at,
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
        paid_amount_cents=m["paid_amount_cents"],
        paid_payment_type=PaymentType(m["paid_payment_type"]) if m["paid_payment_type"] else None,
        join_link_at=m["join_link_at"],
    )
