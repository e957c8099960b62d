"""Stripe PaymentGateway: Customers, Checkout Sessions and Subscriptions through stripe-python's async calls."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import httpx
import stripe
from stripe.checkout import Session
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsLineItemPriceData

from weft.adapters.json_bodies import retry_after
from weft.application.pacing import RateLimit
from weft.application.ports import (
    CheckoutRequest,
    CheckoutSession,
    CustomerRecord,
    SessionState,
    SubscriptionState,
)
from weft.domain.errors import PaymentProviderError, PaymentProviderThrottled, PaymentProviderUnavailable

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
SHIPPING_COUNTRIES: list[Literal["US", "CA"]] = ["US", "CA"]
# Auth and permission errors count as transient: they come from a rotated or restricted key, which an operator
# fixes; answering 5xx keeps Stripe redelivering the events meanwhile instead of losing them.
_TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError, stripe.AuthenticationError,
              stripe.PermissionError)


class StripePaymentGateway:
    """PaymentGateway on a StripeClient whose only HTTP client is async httpx, so calls never block the loop.
    Every request, stripe-python's own retries included, waits its turn under `limit` (STRIPE_MAX_REQUESTS_PER_SECOND)
    and a 429 pauses them all."""

    def __init__(
        self, api_key: str, api_base: str = DEFAULT_STRIPE_API_BASE, max_network_retries: int = 2,
        limit: RateLimit | None = None,
    ) -> None:
        self._api_key = api_key
        self._http = _AsyncHttpxClient(timeout=30.0, limit=limit)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()

    async def find_or_create_customer(self, email: str, phone: str) -> CustomerRecord:
        """The customer with this email (exact list, then search), else this phone, else a new one;
        the phone is added when the found customer lacks it."""
        with self._mapped_errors():
            customer = await self._find_customer(email, phone)
            if customer is None:
                customer = await self._client.v1.customers.create_async(
                    {"email": email, "phone": phone}, {"idempotency_key": _customer_key(email, phone)}
                )
            elif not customer.phone:
                customer = await self._client.v1.customers.update_async(customer.id, {"phone": phone})
        return _customer_record(customer)

    async def _find_customer(self, email: str, phone: str) -> stripe.Customer | None:
        listed = await self._client.v1.customers.list_async({"email": email, "limit": 1})
        if listed.data:
            return listed.data[0]
        # Search lags writes, so it only catches customers the exact, case-sensitive list misses.
        for query in (f"email:{_quoted(email)}", f"phone:{_quoted(phone)}"):
            found = await self._client.v1.customers.search_async({"query": query, "limit": 1})
            if found.data:
                return found.data[0]
        return None

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a hosted checkout; the same idempotency key (with the same request) yields the same session."""
        with self._mapped_errors():
            session = await self._client.v1.checkout.sessions.create_async(
                _session_params(request), {"idempotency_key": request.idempotency_key}
            )
        if not session.url:
            raise PaymentProviderError(f"Stripe checkout session {session.id} has no url")
        return CheckoutSession(id=session.id, url=session.url)

    async def retrieve_checkout_session(self, session_id: str) -> SessionState:
        """The session as Stripe sees it now."""
        with self._mapped_errors():
            session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        return _session_state(session)

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        """The subscription as Stripe sees it now."""
        with self._mapped_errors():
            subscription = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        return _subscription_state(subscription)

    async def retrieve_customer(self, customer_id: str) -> CustomerRecord:
        """The customer as Stripe sees it now."""
        with self._mapped_errors():
            customer = await self._client.v1.customers.retrieve_async(customer_id)
        return _customer_record(customer)

    async def cancel_subscription(self, subscription_id: str) -> None:
        """Cancel now; a subscription that is already canceled counts as done."""
        with self._mapped_errors():
            try:
                await self._client.v1.subscriptions.cancel_async(subscription_id)
            except stripe.InvalidRequestError as exc:
                if not await self._already_canceled(subscription_id, exc):
                    raise

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """A Billing Portal session for the customer (the account's default portal configuration)."""
        with self._mapped_errors():
            session = await self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url})
        return session.url

    async def _already_canceled(self, subscription_id: str, exc: stripe.InvalidRequestError) -> bool:
        # Stripe answers a second cancel with 404 resource_missing "No such subscription", exactly as for an
        # unknown id, so a re-read tells the two apart: a canceled subscription can still be retrieved.
        if "canceled" in (exc.user_message or "").lower():
            return True
        if exc.code != "resource_missing":
            return False
        subscription = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        return subscription.status == "canceled"

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """Turn stripe errors into PaymentProviderUnavailable (transient) or PaymentProviderError (for good)."""
        try:
            yield
        except stripe.RateLimitError as exc:
            raise PaymentProviderThrottled(self._describe(exc), _retry_after(exc.headers)) from exc
        except _TRANSIENT as exc:
            raise PaymentProviderUnavailable(self._describe(exc)) from exc
        except stripe.StripeError as exc:
            raise PaymentProviderError(self._describe(exc)) from exc

    def _describe(self, exc: stripe.StripeError) -> str:
        status = f" (HTTP {exc.http_status})" if exc.http_status else ""
        message = f"Stripe {type(exc).__name__}{status}: {exc.user_message or 'no message'}"
        return message.replace(self._api_key, "[api key]") if self._api_key else message


class _AsyncHttpxClient(stripe.HTTPClient):
    """stripe-python's transport on one httpx.AsyncClient, async only.

    stripe.HTTPXClient hands the encoded form to httpx as `data=`, which httpx 0.28 deprecates (`content=`)."""

    name = "weft-httpx-async"

    def __init__(self, timeout: float, limit: RateLimit | None) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(timeout=timeout)
        self._limit = limit

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if self._limit is not None:
            await self._limit.acquire()
        try:
            response = await self._client.request(method, url, headers=headers, content=post_data)
        except httpx.HTTPError as exc:
            message = f"Network error talking to Stripe: {type(exc).__name__}"
            raise stripe.APIConnectionError(message, should_retry=True) from exc  # type: ignore[no-untyped-call]
        if response.status_code == 429 and self._limit is not None:
            self._limit.pause(_retry_after(response.headers))
        return response.content, response.status_code, response.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    async def close_async(self) -> None:
        await self._client.aclose()

    def close(self) -> None:
        """Nothing to close synchronously: there is no sync client."""


def _retry_after(headers: Mapping[str, str] | None) -> float:
    """Seconds a 429 asks us to wait: its Retry-After when it has one (Stripe's usually do not), else 1 s."""
    asked = retry_after(headers)
    return 1.0 if asked is None else min(max(asked, 0.1), 300.0)


def _quoted(value: str) -> str:
    """A search-query string literal: single-quoted, with backslashes and quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    return f"'{escaped}'"


def _customer_key(email: str, phone: str) -> str:
    return "customer-" + hashlib.sha256(f"{email}|{phone}".encode()).hexdigest()


def _session_params(request: CheckoutRequest) -> SessionCreateParams:
    """The Checkout Session create parameters for one inline-priced line item."""
    metadata = dict(request.metadata)
    params: SessionCreateParams = {
        "mode": "subscription" if request.monthly else "payment",
        "customer": request.customer_id,
        "line_items": [{"quantity": 1, "price_data": _price_data(request)}],
        "phone_number_collection": {"enabled": False},
        "shipping_address_collection": {"allowed_countries": list(SHIPPING_COUNTRIES)},
        "customer_update": {"shipping": "auto"},
        "allow_promotion_codes": True,
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "metadata": metadata,
    }
    if request.monthly:
        params["subscription_data"] = {"metadata": dict(metadata)}
    else:
        params["payment_intent_data"] = {"metadata": dict(metadata)}
    return params


def _price_data(request: CheckoutRequest) -> SessionCreateParamsLineItemPriceData:
    price: SessionCreateParamsLineItemPriceData = {
        "currency": "usd",
        "unit_amount": request.amount_cents,
        "product_data": {"name": request.product_name},
    }
    if request.monthly:
        price["recurring"] = {"interval": "month"}
    return price


def _session_state(session: Session) -> SessionState:
    details = session.customer_details
    return SessionState(
        id=session.id,
        status=session.status or "open",
        payment_status=session.payment_status,
        mode=session.mode,
        customer_id=_id_of(session.customer),
        subscription_id=_id_of(session.subscription),
        phone=details.phone if details else None,
        email=details.email if details else None,
        amount_total=session.amount_total,
        metadata=_plain_metadata(session.metadata),
    )


def _subscription_state(subscription: stripe.Subscription) -> SubscriptionState:
    return SubscriptionState(
        id=subscription.id,
        status=subscription.status,
        customer_id=_id_of(subscription.customer),
        metadata=_plain_metadata(subscription.metadata),
    )


def _customer_record(customer: stripe.Customer) -> CustomerRecord:
    return CustomerRecord(id=customer.id, email=customer.email, phone=customer.phone)


def _id_of(field: str | stripe.StripeObject | None) -> str | None:
    """The id of an expandable field, whether Stripe sent the id or the expanded object."""
    if field is None or isinstance(field, str):
        return field
    return str(field["id"])


def _plain_metadata(metadata: stripe.StripeObject | None) -> dict[str, str]:
    if metadata is None:
        return {}
    return {str(key): str(value) for key, value in metadata.to_dict().items()}
