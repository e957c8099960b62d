from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from weft.adapters import sql_schema as t
from weft.adapters.sql_payments import PaymentRows
from weft.application.ports import OutboxEntry
from weft.domain.messages import DeliveryStatus, InboundSms, MessageKind, OutboundSms
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Membership, Subscriber


class SqlTransaction(PaymentRows):
    """The Transaction port over one SQLAlchemy connection inside an open transaction."""

    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        self._upserts = upserts(connection.dialect.name)

    def record_inbound(self, message: InboundSms, at: datetime) -> bool:
        row = {
            "provider_id": message.provider_id, "phone": message.sender.e164, "text": message.text,
            "conversation_id": message.conversation_id, "channel_id": message.channel_id, "received_at": at,
        }
        # RETURNING, not rowcount: psycopg reports -1 for this statement through SQLAlchemy.
        return self._c.execute(self._upserts.record_inbound, row).first() is not None

    def get_subscriber(self, phone: PhoneNumber) -> Subscriber | None:
        row = self._c.execute(_GET_SUBSCRIBER, {"phone": phone.e164}).first()
        return None if row is None else subscriber_from_row(row)

    def save_subscriber(self, subscriber: Subscriber) -> None:
        self._c.execute(self._upserts.save_subscriber, subscriber_values(subscriber))
        if subscriber.changes:
            self._c.execute(
                _ADD_CONSENT_CHANGE,
                [
                    {"phone": subscriber.phone.e164, "consent": c.consent.value, "at": c.at,
                     "message_id": c.message_id, "reason": c.reason}
                    for c in subscriber.changes
                ],
            )
            subscriber.changes.clear()

    def enqueue(self, message: OutboundSms, at: datetime) -> None:
        self._c.execute(_ENQUEUE, {
            "id": message.id, "phone": message.to.e164, "text": message.text, "kind": message.kind.value,
            "conversation_id": message.conversation_id, "channel_id": message.channel_id,
            "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": at, "created_at": at,
        })

    def due_messages(self, now: datetime, limit: int) -> list[OutboxEntry]:
        return [entry_from_row(row) for row in self._c.execute(_DUE_MESSAGES, {"now": now, "limit": limit})]

    def update_delivery(self, message_id: str, entry: OutboxEntry) -> None:
        self._c.execute(_UPDATE_DELIVERY, {
            "message_id": message_id, "status": entry.status.value, "attempts": entry.attempts,
            "next_attempt_at": entry.next_attempt_at, "provider_id": entry.provider_id, "error": entry.error,
            "sent_at": entry.sent_at,
        })


# Built once: SQLAlchemy then reuses each statement's cache key and compiled form instead of rebuilding them.
# FOR UPDATE (PostgreSQL; SQLite has one writer anyway): instances must not overwrite each other's read-modify-write.
_GET_SUBSCRIBER = sa.select(t.subscribers).where(t.subscribers.c.phone == sa.bindparam("phone")).with_for_update()
_ADD_CONSENT_CHANGE = t.consent_history.insert()
_ENQUEUE = t.outbox.insert()
_DUE_MESSAGES = (
    sa.select(t.outbox)
    .where(t.outbox.c.status == DeliveryStatus.PENDING.value, t.outbox.c.next_attempt_at <= sa.bindparam("now"))
    .order_by(t.outbox.c.next_attempt_at, t.outbox.c.created_at)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_UPDATE_DELIVERY = t.outbox.update().where(t.outbox.c.id == sa.bindparam("message_id"))


@attrs.frozen
class Upserts:
    """The dialect-specific INSERT ... ON CONFLICT statements, executed with one dict of values each."""

    record_inbound: sa.Executable
    save_subscriber: sa.Executable


@functools.cache
def upserts(dialect_name: str) -> Upserts:
    """The upserts for a dialect, built once per process."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    inbound = insert(t.inbound_messages).on_conflict_do_nothing(index_elements=["provider_id"])
    subscriber = insert(t.subscribers)
    return Upserts(
        record_inbound=inbound.returning(t.inbound_messages.c.provider_id),
        save_subscriber=subscriber.on_conflict_do_update(
            index_elements=["phone"],
            set_={c.name: subscriber.excluded[c.name] for c in t.subscribers.c if not c.primary_key},
        ),
    )


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


def entry_from_row(row: sa.Row[Any]) -> OutboxEntry:
    m = row._mapping
    message = OutboundSms(
        id=m["id"], to=PhoneNumber(m["phone"]), text=m["text"], kind=MessageKind(m["kind"]),
        conversation_id=m["conversation_id"], channel_id=m["channel_id"],
    )
    return OutboxEntry(
        message=message, status=DeliveryStatus(m["status"]), attempts=m["attempts"], created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"], provider_id=m["provider_id"], error=m["error"], sent_at=m["sent_at"],
    )
