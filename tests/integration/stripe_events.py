"""Stripe objects and signed webhook events in the current API shapes (2026-10-28.endive), for fakes and tests."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from typing import Any

API_VERSION = "2026-10-28.endive"
CHECKOUT_URL = "https://checkout.stripe.test/c/pay/{id}"
_event_numbers = itertools.count(1)


def new_id(prefix: str) -> str:
    """A Stripe-looking id such as `cus_test_3f9a…`."""
    return f"{prefix}_test_{uuid.uuid4().hex[:24]}"


def customer(email: str | None, phone: str | None, *, id: str | None = None, name: str | None = None) -> dict[str, Any]:
    """A Customer object."""
    return {
        "id": id or new_id("cus"), "object": "customer", "address": None, "balance": 0, "created": int(time.time()),
        "currency": None, "default_source": None, "delinquent": False, "description": None, "email": email,
        "invoice_prefix": uuid.uuid4().hex[:8].upper(), "livemode": False, "metadata": {}, "name": name,
        "phone": phone, "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
    }


def checkout_session(
    *, mode: str, customer_id: str | None, amount_total: int, metadata: dict[str, str] | None = None,
    success_url: str = "https://example.test/ok?session_id={CHECKOUT_SESSION_ID}",
    cancel_url: str = "https://example.test/cancel", id: str | None = None,
) -> dict[str, Any]:
    """An open, unpaid Checkout Session object (hosted page)."""
    session_id = id or new_id("cs")
    now = int(time.time())
    return {
        "id": session_id, "object": "checkout.session", "allow_promotion_codes": True,
        "amount_subtotal": amount_total, "amount_total": amount_total, "cancel_url": cancel_url,
        "client_reference_id": None, "collected_information": None, "created": now, "currency": "usd",
        "customer": customer_id, "customer_creation": None, "customer_details": None, "customer_email": None,
        "expires_at": now + 86400, "invoice": None, "livemode": False, "metadata": dict(metadata or {}),
        "mode": mode, "payment_intent": None, "payment_method_types": ["card"], "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "shipping_address_collection": {"allowed_countries": ["US", "CA"]}, "status": "open",
        "subscription": None, "success_url": success_url, "ui_mode": "hosted_page",
        "url": CHECKOUT_URL.format(id=session_id),
    }


def customer_details(email: str | None, phone: str | None, name: str = "Test Buyer") -> dict[str, Any]:
    """The `customer_details` of a completed session."""
    return {"address": _address(), "business_name": None, "email": email, "individual_name": None, "name": name,
            "phone": phone, "tax_exempt": "none", "tax_ids": []}


def collected_information(name: str = "Test Buyer") -> dict[str, Any]:
    """The `collected_information` of a completed session (shipping details moved here in 2025-03-31.basil)."""
    return {"business_name": None, "individual_name": None, "shipping_details": {"address": _address(), "name": name}}


def _address() -> dict[str, Any]:
    return {"city": "Springfield", "country": "US", "line1": "1 Main St", "line2": None, "postal_code": "62701",
            "state": "IL"}


def subscription(
    *, customer_id: str, amount: int, product_name: str = "Membership", metadata: dict[str, str] | None = None,
    status: str = "active", id: str | None = None,
) -> dict[str, Any]:
    """A monthly Subscription; the period lives on each item since 2025-03-31.basil."""
    sub_id = id or new_id("sub")
    now = int(time.time())
    item = {
        "id": new_id("si"), "object": "subscription_item", "created": now, "current_period_start": now,
        "current_period_end": now + 30 * 86400, "metadata": {}, "quantity": 1, "subscription": sub_id,
        "price": {"id": new_id("price"), "object": "price", "active": False, "currency": "usd",
                  "product": new_id("prod"), "recurring": {"interval": "month", "interval_count": 1},
                  "type": "recurring", "unit_amount": amount, "nickname": product_name},
    }
    return {
        "id": sub_id, "object": "subscription", "billing_cycle_anchor": now, "cancel_at": None,
        "cancel_at_period_end": False, "canceled_at": None, "cancellation_details": None,
        "collection_method": "charge_automatically", "created": now, "currency": "usd", "customer": customer_id,
        "ended_at": None, "latest_invoice": new_id("in"), "livemode": False, "metadata": dict(metadata or {}),
        "start_date": now, "status": status,
        "items": {"object": "list", "data": [item], "has_more": False,
                  "url": f"/v1/subscription_items?subscription={sub_id}"},
    }


def invoice(subscription_id: str, customer_id: str, *, paid: bool, amount: int = 1000,
            metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """A subscription Invoice; the subscription is under `parent.subscription_details` (no top-level field)."""
    now = int(time.time())
    return {
        "id": new_id("in"), "object": "invoice", "amount_due": amount, "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount, "attempt_count": 1, "attempted": True,
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically", "created": now,
        "currency": "usd", "customer": customer_id, "livemode": False, "metadata": {},
        "next_payment_attempt": None if paid else now + 3 * 86400, "period_end": now, "period_start": now,
        "status": "paid" if paid else "open", "total": amount,
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"metadata": dict(metadata or {}), "subscription": subscription_id}},
        "lines": {"object": "list", "has_more": False, "data": [{
            "id": new_id("il"), "object": "line_item", "amount": amount, "currency": "usd",
            "parent": {"type": "subscription_item_details",
                       "subscription_item_details": {"subscription": subscription_id,
                                                     "subscription_item": new_id("si"), "proration": False}},
        }]},
    }


def event(type: str, obj: dict[str, Any], previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event envelope with a fresh `evt_…` id around a copy of obj."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": f"evt_test_{next(_event_numbers):04d}{uuid.uuid4().hex[:20]}", "object": "event",
        "api_version": API_VERSION, "created": int(time.time()), "data": data, "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": type,
    }


def checkout_session_completed(session: dict[str, Any]) -> dict[str, Any]:
    return event("checkout.session.completed", session)


def session_expired(session: dict[str, Any]) -> dict[str, Any]:
    return event("checkout.session.expired", {**session, "status": "expired", "url": None})


def async_payment_succeeded(session: dict[str, Any]) -> dict[str, Any]:
    return event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"})


def async_payment_failed(session: dict[str, Any]) -> dict[str, Any]:
    return event("checkout.session.async_payment_failed", {**session, "payment_status": "unpaid"})


def invoice_paid(subscription_id: str, customer_id: str, amount: int = 1000) -> dict[str, Any]:
    return event("invoice.paid", invoice(subscription_id, customer_id, paid=True, amount=amount))


def invoice_payment_failed(subscription_id: str, customer_id: str, amount: int = 1000) -> dict[str, Any]:
    return event("invoice.payment_failed", invoice(subscription_id, customer_id, paid=False, amount=amount))


def subscription_updated(sub: dict[str, Any], previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return event("customer.subscription.updated", sub, previous_attributes or {"status": "active"})


def subscription_deleted(sub: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return event("customer.subscription.deleted", {**sub, "status": "canceled", "canceled_at": now, "ended_at": now})


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for payload, as Stripe computes it (v1 = hex HMAC-SHA256 of "t.body")."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"
