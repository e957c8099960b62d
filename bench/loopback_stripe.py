"""A loopback Stripe API for bench/stripe_webhook.py: completed, paid Checkout Sessions `cs_bench_{i}`, counted.

Session i belongs to member i: email m{i}@example.org, phone `bench_phone(i)`, customer cus_bench_{i}. The webhook
bodies are built from the same `checkout_session`, so the event and the re-read agree, as they do at Stripe.

With `--limit R` a token bucket (R tokens a second, holding R: one second of burst) refuses API requests beyond
R a second with 429 in Stripe's envelope (`invalid_request_error`, code `rate_limit`) and, like Stripe's, no
Retry-After; a refused request counts as throttled, never as a read. `GET /stats` has the tallies, `GET /sessions`
the indexes of the sessions read successfully and of those read more than once (sorted).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import uvicorn
from loopback_provider import TokenBucket
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "sk_test_bench"
SESSION_PREFIX = "cs_bench_"
CUSTOMER_PREFIX = "cus_bench_"
FIRST_NUMBER = 3_000_000
"""+1 212 300-0000 upwards: valid NANP numbers (stripe_webhook.py checks them with phonenumbers before the run)."""


def bench_phone(index: int) -> str:
    return f"+1212{FIRST_NUMBER + index:07d}"


def checkout_session(index: int, created: int) -> dict[str, Any]:
    return session_object(str(index), bench_phone(index), created)


def session_object(number: str, phone: str, created: int) -> dict[str, Any]:
    """A complete, paid one-time Checkout Session as Stripe returns it (API 2026-10-28), with the phone collected."""
    # `number` goes into the ids and the email as text, so that a placeholder turns this into a body template.
    email = f"m{number}@example.org"
    return {
        "id": f"{SESSION_PREFIX}{number}", "object": "checkout.session", "allow_promotion_codes": True,
        "amount_subtotal": 1000, "amount_total": 1000, "cancel_url": "https://weft.example.org/cancel",
        "client_reference_id": None, "created": created, "currency": "usd", "customer": f"{CUSTOMER_PREFIX}{number}",
        "customer_creation": None, "customer_email": None, "expires_at": created + 86400, "invoice": None,
        "customer_details": {"address": None, "business_name": None, "email": email, "individual_name": None,
                             "name": "Bench Member", "phone": phone, "tax_exempt": "none", "tax_ids": []},
        "livemode": False, "metadata": {"phone": phone, "tier": "10", "payment_type": "one_time"},
        "mode": "payment", "payment_intent": f"pi_bench_{number}", "payment_method_types": ["card"],
        "payment_status": "paid", "phone_number_collection": {"enabled": False}, "status": "complete",
        "subscription": None, "success_url": "https://weft.example.org/ok?session_id={CHECKOUT_SESSION_ID}",
        "ui_mode": "hosted_page", "url": None,
    }


def customer(index: int, created: int) -> dict[str, Any]:
    return {
        "id": f"{CUSTOMER_PREFIX}{index}", "object": "customer", "address": None, "balance": 0, "created": created,
        "currency": None, "delinquent": False, "description": None, "email": f"m{index}@example.org",
        "livemode": False, "metadata": {}, "name": "Bench Member", "phone": bench_phone(index),
        "preferred_locales": [], "shipping": None, "tax_exempt": "none",
    }


def stripe_error(status: int, message: str, **extra: str) -> JSONResponse:
    """An error in Stripe's envelope."""
    return JSONResponse({"error": {"type": "invalid_request_error", "message": message, **extra}},
                        status_code=status, headers={"request-id": "req_bench"})


class LoopbackStripe:
    """GET sessions and customers by index; counts every request, the sessions read and the distinct ones, and
    with a `limit` the requests it throttled."""

    def __init__(self, limit: TokenBucket | None = None) -> None:
        self.requests = 0
        self.session_reads = 0
        self.customer_reads = 0
        self.sessions: Counter[int] = Counter()
        """Session index -> successful reads of it."""
        self.refused = 0
        self.throttled = 0
        self._limit = limit

    async def get_session(self, request: Request) -> Response:
        return self._answer(request, SESSION_PREFIX, "checkout.session", checkout_session)

    async def get_customer(self, request: Request) -> Response:
        return self._answer(request, CUSTOMER_PREFIX, "customer", customer)

    def _answer(self, request: Request, prefix: str, kind: str,
                build: Callable[[int, int], dict[str, Any]]) -> Response:
        self.requests += 1
        if self._limit is not None and self._limit.take() > 0:
            self.throttled += 1
            return stripe_error(429, "Request rate limit exceeded. Learn more about rate limits here "
                                     "https://stripe.com/docs/rate-limits.", code="rate_limit")
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            self.refused += 1
            return stripe_error(401, "Invalid API Key provided")
        object_id = str(request.path_params["id"])
        index = object_id.removeprefix(prefix)
        if not object_id.startswith(prefix) or not index.isdigit():
            self.refused += 1
            return stripe_error(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
        if prefix == SESSION_PREFIX:
            self.session_reads += 1
            self.sessions[int(index)] += 1
        else:
            self.customer_reads += 1
        return JSONResponse(build(int(index), int(time.time())), headers={"request-id": f"req_bench_{self.requests}"})

    async def stats(self, request: Request) -> Response:
        return JSONResponse({"requests": self.requests, "session_reads": self.session_reads,
                             "distinct_sessions": len(self.sessions), "customer_reads": self.customer_reads,
                             "reread_sessions": sum(1 for reads in self.sessions.values() if reads > 1),
                             "refused": self.refused, "throttled": self.throttled})

    async def read_sessions(self, request: Request) -> Response:
        return JSONResponse({"read": sorted(self.sessions),
                             "reread": sorted(index for index, reads in self.sessions.items() if reads > 1)})


def create_stripe_app(stripe: LoopbackStripe) -> Starlette:
    return Starlette(routes=[
        Route("/v1/checkout/sessions/{id}", stripe.get_session, methods=["GET"]),
        Route("/v1/customers/{id}", stripe.get_customer, methods=["GET"]),
        Route("/stats", stripe.stats, methods=["GET"]),
        Route("/sessions", stripe.read_sessions, methods=["GET"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description="loopback Stripe API for bench/stripe_webhook.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--limit", type=float, default=0.0,
                        help="refuse API requests beyond this many a second with 429 rate_limit, from a token bucket "
                             "holding one second's worth (0: accept everything)")
    args = parser.parse_args()
    limit = TokenBucket(args.limit, max(1.0, args.limit)) if args.limit > 0 else None
    # No access log: this process shares the CPUs with the server under test and should cost as little as it can.
    uvicorn.run(create_stripe_app(LoopbackStripe(limit)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
