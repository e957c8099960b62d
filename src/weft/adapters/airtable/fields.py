"""The two tables' fields as organisers create them by hand (README: "The Airtable base"), and the mapping between
Weft's records and those fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from weft.application.ports import BaseNumberRow, BasePaymentRow
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.subscriber import Consent, Subscriber
from weft.domain.tiers import PaymentType

PHONE = "Phone Number"
SESSION = "Stripe Session ID"
_TEXT = ("singleLineText", "multilineText")
_DATE = ("dateTime", "date")
NUMBER_FIELDS: dict[str, tuple[str, ...]] = {
    PHONE: ("singleLineText", "phoneNumber"),
    "Message": _TEXT,
    "Consent": ("singleSelect", *_TEXT),
    "Created": _DATE,
    "Updated": _DATE,
}
PAYMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "Email": ("email", *_TEXT),
    PHONE: ("phoneNumber", "singleLineText"),
    "Tier": ("singleSelect", *_TEXT),
    "Amount": ("currency", "number"),
    "Payment Type": ("singleSelect", *_TEXT),
    "Stripe Customer ID": _TEXT,
    "Stripe Subscription ID": _TEXT,
    SESSION: _TEXT,
    "Status": ("singleSelect", *_TEXT),
    "Created": _DATE,
    "Updated": _DATE,
}
CONSENT_LABELS = {Consent.SUBSCRIBED: "subscribed", Consent.OPTED_OUT: "opted out",
                  Consent.PENDING: "awaiting YES", Consent.NONE: "replies only"}
STATUS_LABELS = {  # the base has five statuses: each label reads back as the first status named with it
    PaymentStatus.PENDING: "pending", PaymentStatus.COMPLETED: "completed", PaymentStatus.ACTIVE: "active",
    PaymentStatus.FAILED: "failed", PaymentStatus.CANCELLED: "cancelled",
    PaymentStatus.PROCESSING: "pending", PaymentStatus.PAST_DUE: "failed", PaymentStatus.EXPIRED: "cancelled",
}
TYPE_LABELS = {PaymentType.ONE_TIME: "one-time", PaymentType.MONTHLY: "monthly"}
MESSAGE_LIMIT = 500
K = TypeVar("K")


def when(at: datetime | None) -> str | None:
    """Airtable's date-time: ISO 8601 in UTC with milliseconds."""
    return None if at is None else at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payment_key(payment: Payment) -> str:
    """The payments table's match field: the checkout session, else Weft's own payment id."""
    return payment.checkout_session_id or payment.id


def number_fields(s: Subscriber) -> dict[str, Any]:
    return {PHONE: s.phone.e164, "Message": (s.last_message or "")[:MESSAGE_LIMIT],
            "Consent": CONSENT_LABELS[s.consent], "Created": when(s.created_at), "Updated": when(s.updated_at)}


def payment_fields(p: Payment) -> dict[str, Any]:
    return {
        "Email": p.email, PHONE: p.phone.e164, "Tier": p.tier, "Amount": p.amount_cents / 100,
        "Payment Type": TYPE_LABELS.get(p.payment_type) if p.payment_type else None,
        "Stripe Customer ID": p.customer_id, "Stripe Subscription ID": p.subscription_id,
        SESSION: payment_key(p), "Status": STATUS_LABELS[p.status],
        "Created": when(p.created_at), "Updated": when(p.updated_at),
    }


def number_row(record: dict[str, Any]) -> BaseNumberRow:
    f = record.get("fields", {})
    return BaseNumberRow(row_id=record["id"], phone=_text(f.get(PHONE)), message=_text(f.get("Message")),
                         consent=_label(CONSENT_LABELS, f.get("Consent")), created=_created(record))


def payment_row(record: dict[str, Any]) -> BasePaymentRow:
    f = record.get("fields", {})
    amount = f.get("Amount")
    return BasePaymentRow(
        row_id=record["id"], email=_text(f.get("Email")), phone=_text(f.get(PHONE)), tier=_text(f.get("Tier")),
        amount=float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else None,
        payment_type=_label(TYPE_LABELS, f.get("Payment Type")), type_text=_text(f.get("Payment Type")),
        customer_id=_text(f.get("Stripe Customer ID")), subscription_id=_text(f.get("Stripe Subscription ID")),
        session_id=_text(f.get(SESSION)), status=_label(STATUS_LABELS, f.get("Status")),
        status_text=_text(f.get("Status")), created=_created(record),
    )


def schema_problems(tables: list[dict[str, Any]], wanted: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    """What the base's schema (the metadata API's `tables`) lacks for the tables and fields in `wanted`."""
    found = {table.get("name"): {f.get("name"): f.get("type") for f in table.get("fields", [])} for table in tables}
    problems = []
    for table, fields in wanted.items():
        if table not in found:
            problems.append(f'The table "{table}" is missing.')
            continue
        for name, types in fields.items():
            kind = found[table].get(name)
            if kind is None:
                problems.append(f'The table "{table}" has no field "{name}" (make it {_either(types)}).')
            elif kind not in types:
                problems.append(f'The field "{name}" of "{table}" is {kind}; make it {_either(types)}.')
    return problems


def _either(types: tuple[str, ...]) -> str:
    return " or ".join(types)


def _label(labels: Mapping[K, str], value: object) -> K | None:
    """The value a label names (the first, where two share one), matched without regard to case."""
    text = _text(value).lower()
    return next((key for key, label in labels.items() if label == text), None)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _created(record: dict[str, Any]) -> datetime | None:
    for value in (record.get("fields", {}).get("Created"), record.get("createdTime")):
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
