from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import Cancellation, Lease, MirrorKind, MirrorQueue
from weft.domain.journey import AuditEntry
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.tiers import PaymentType

CANCELLATION_QUEUE = QueueTable(t.cancellations, "next_attempt_at")


class SqlPayments:
    def __init__(self, connection: sa.Connection, mirror: MirrorQueue | None = None) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)
        self._mirror = mirror

    def get(self, payment_id: str) -> Payment | None:
        return self._where(t.payments.c.id == payment_id)

    def by_session(self, session_id: str) -> Payment | None:
        return self._where(t.payments.c.checkout_session_id == session_id)

    def by_subscription(self, subscription_id: str) -> Payment | None:
        return self._where(t.payments.c.subscription_id == subscription_id)

    def save(self, payment: Payment) -> None:
        values = payment_values(payment)
        statement = self._insert(t.payments).values(**values)
        self._c.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
        if self._mirror is not None:
            self._mirror.changed(MirrorKind.PAYMENT, [payment.id], payment.updated_at)

    def live_subscriptions(self, phone: PhoneNumber) -> list[str]:
        p = t.payments.c
        live = [s.value for s in (PaymentStatus.ACTIVE, PaymentStatus.PAST_DUE, PaymentStatus.PROCESSING)]
        query = sa.select(p.subscription_id).where(p.phone == phone.e164, p.subscription_id.is_not(None),
                                                    p.status.in_(live))
        return [row[0] for row in self._c.execute(query)]

    def of_member(self, phone: PhoneNumber, email: str | None = None) -> list[Payment]:
        p = t.payments.c
        condition = p.phone == phone.e164 if email is None else sa.or_(p.phone == phone.e164, p.email == email)
        rows = self._c.execute(sa.select(t.payments).where(condition).order_by(p.created_at, p.id))
        return [payment_from_row(row) for row in rows]

    def _where(self, condition: sa.ColumnElement[bool]) -> Payment | None:
        row = self._c.execute(sa.select(t.payments).where(condition).with_for_update()).first()
        return None if row is None else payment_from_row(row)


class SqlEvents:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)

    def record(self, event_id: str, at: datetime) -> bool:
        statement = self._insert(t.processed_events).values(event_id=event_id, processed_at=at)
        inserted = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(
            t.processed_events.c.event_id
        )
        return self._c.execute(inserted).first() is not None


class SqlAudit:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, entry: AuditEntry) -> None:
        self._c.execute(t.audit_log.insert().values(
            action=entry.action, at=entry.at, phone=entry.phone, payment_id=entry.payment_id, details=entry.details,
        ))


class SqlCancellations:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)

    def request(self, cancellation: Cancellation) -> None:
        statement = self._insert(t.cancellations).values(**cancellation_values(cancellation))
        self._c.execute(statement.on_conflict_do_nothing(index_elements=["subscription_id"]))

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Cancellation]:
        rows = CANCELLATION_QUEUE.claim(self._c, lease, now, limit, t.cancellations.c.status == "pending")
        return [cancellation_from_row(row) for row in rows]

    def save(self, cancellation: Cancellation) -> None:
        values = {**cancellation_values(cancellation), "claimed_by": None}
        self._c.execute(
            t.cancellations.update().where(t.cancellations.c.subscription_id == cancellation.subscription_id)
            .values(**values)
        )


def payment_values(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id, "phone": p.phone.e164, "email": p.email, "tier": p.tier, "amount_cents": p.amount_cents,
        "payment_type": p.payment_type.value if p.payment_type else None, "status": p.status.value,
        "checkout_session_id": p.checkout_session_id, "customer_id": p.customer_id,
        "subscription_id": p.subscription_id, "past_due_notified": p.past_due_notified,
        "phone_proven": p.phone_proven,
        "created_at": p.created_at, "updated_at": p.updated_at,
    }


def payment_from_row(row: sa.Row[Any]) -> Payment:
    m = row._mapping
    return Payment(
        id=m["id"], phone=PhoneNumber(m["phone"]), email=m["email"], tier=m["tier"],
        amount_cents=m["amount_cents"], payment_type=PaymentType(m["payment_type"]) if m["payment_type"] else None,
        created_at=m["created_at"], updated_at=m["updated_at"], status=PaymentStatus(m["status"]),
        checkout_session_id=m["checkout_session_id"], customer_id=m["customer_id"],
        subscription_id=m["subscription_id"], past_due_notified=bool(m["past_due_notified"]),
        phone_proven=bool(m["phone_proven"]),
    )


def audit_from_row(row: sa.Row[Any]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(action=m["action"], at=m["at"], phone=m["phone"], payment_id=m["payment_id"],
                      details=dict(m["details"] or {}))


def cancellation_values(c: Cancellation) -> dict[str, Any]:
    return {"subscription_id": c.subscription_id, "phone": c.phone.e164, "status": c.status,
            "attempts": c.attempts, "next_attempt_at": c.next_attempt_at, "error": c.error,
            "requested_at": c.requested_at}


def cancellation_from_row(row: sa.Row[Any]) -> Cancellation:
    m = row._mapping
    return Cancellation(subscription_id=m["subscription_id"], phone=PhoneNumber(m["phone"]),
                        requested_at=m["requested_at"], status=m["status"], attempts=m["attempts"],
                        next_attempt_at=m["next_attempt_at"], error=m["error"])
