"""A stateful loopback Stripe: form-encoded requests in, Stripe-shaped JSON objects and errors out."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from tests.integration import stripe_events as objects
from tests.integration.loopback import Canned, LoopbackServer, Recorded

_Route = Callable[[dict[str, Any], tuple[str, ...]], Canned]
_CLAUSE = re.compile(r"""\s*(?:AND\s+)?(\w+):(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*""")


@attrs.frozen
class StripeCall:
    """One request as Stripe would read it: nested params from the query string or the form body."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    stripe_version: str | None
    authorization: str | None

    @classmethod
    def of(cls, request: Recorded) -> StripeCall:
        parts = urlsplit(request.path)
        raw = parts.query if request.method in ("GET", "DELETE") else request.body.decode()
        return cls(request.method, parts.path, parse_form(raw), request.headers.get("idempotency-key"),
                   request.headers.get("stripe-version"), request.headers.get("authorization"))


def parse_form(raw: str) -> dict[str, Any]:
    """Nested dicts and lists from Stripe's bracket notation: `a[b][0][c]=x` → {"a": {"b": [{"c": "x"}]}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        *parents, leaf = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    """Dicts keyed 0..n-1 become lists, recursively."""
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def stripe_error(status: int, message: str, type: str = "invalid_request_error", **extra: str) -> Canned:
    """An error response in Stripe's envelope."""
    return Canned(status, {"error": {"type": type, "message": message, **extra}}, {"request-id": "req_loopback"})


def missing(kind: str, object_id: str) -> Canned:
    return stripe_error(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")


class LoopbackStripe(LoopbackServer):
    """Customers, Checkout Sessions and Subscriptions kept in memory; POSTs honour Idempotency-Key."""

    def __init__(self, api_key: str = "sk_test_loopback") -> None:
        super().__init__()
        self.api_key = api_key
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self._session_params: dict[str, dict[str, Any]] = {}
        self._replays: dict[str, tuple[str, dict[str, Any], Canned]] = {}
        self._state = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], _Route]] = [
            ("GET", re.compile(r"/v1/customers"), self._list_customers),
            ("GET", re.compile(r"/v1/customers/search"), self._search_customers),
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("GET", re.compile(r"/v1/customers/([^/]+)"), self._get_customer),
            ("POST", re.compile(r"/v1/customers/([^/]+)"), self._update_customer),
            ("POST", re.compile(r"/v1/checkout/sessions"), self._create_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self._get_session),
            ("GET", re.compile(r"/v1/subscriptions/([^/]+)"), self._get_subscription),
            ("DELETE", re.compile(r"/v1/subscriptions/([^/]+)"), self._cancel_subscription),
            ("POST", re.compile(r"/v1/billing_portal/sessions"), self._create_portal_session),
        ]

    @property
    def calls(self) -> list[StripeCall]:
        """Every request so far, parsed."""
        return [StripeCall.of(request) for request in self.requests]

    def calls_to(self, method: str, path: str) -> list[StripeCall]:
        return [call for call in self.calls if call.method == method and call.path == path]

    def fail_next(self, status: int, error: dict[str, Any] | None = None) -> None:
        """Answer the next request with this status and error body, before any state is touched."""
        self.answer_next(Canned(status, error or {"error": {"type": "api_error", "message": "loopback failure"}}))

    def add_customer(self, email: str | None, phone: str | None, name: str | None = None) -> dict[str, Any]:
        """Seed a customer as if created earlier; returns a copy."""
        with self._state:
            created = objects.customer(email, phone, name=name)
            self.customers[created["id"]] = created
            return copy.deepcopy(created)

    def complete_session(self, session_id: str, phone: str | None = None, email: str | None = None) -> dict[str, Any]:
        """Pay the session as a buyer would: paid, customer_details filled, a subscription for monthly; a copy."""
        with self._state:
            session = self.sessions[session_id]
            email = email or self.customers.get(session["customer"] or "", {}).get("email")
            session.update(status="complete", payment_status="paid", url=None,
                           customer_details=objects.customer_details(email, phone),
                           collected_information=objects.collected_information())
            if session["mode"] == "subscription":
                session["subscription"] = self._start_subscription(session_id)["id"]
            else:
                session["payment_intent"] = objects.new_id("pi")
            return copy.deepcopy(session)

    def _start_subscription(self, session_id: str) -> dict[str, Any]:
        session, params = self.sessions[session_id], self._session_params[session_id]
        item = params["line_items"][0]
        started = objects.subscription(
            customer_id=session["customer"], amount=int(item["price_data"]["unit_amount"]),
            product_name=item["price_data"]["product_data"]["name"],
            metadata=params.get("subscription_data", {}).get("metadata"),
        )
        self.subscriptions[started["id"]] = started
        return started

    def expire_session(self, session_id: str) -> dict[str, Any]:
        with self._state:
            self.sessions[session_id].update(status="expired", url=None)
            return copy.deepcopy(self.sessions[session_id])

    def set_subscription_status(self, subscription_id: str, status: str) -> dict[str, Any]:
        with self._state:
            self.subscriptions[subscription_id]["status"] = status
            return copy.deepcopy(self.subscriptions[subscription_id])

    def default_response(self, request: Recorded) -> Canned:
        call = StripeCall.of(request)
        if call.authorization != f"Bearer {self.api_key}":
            return stripe_error(401, f"Invalid API Key provided: {self.api_key[:8]}****")
        routed = self._route(call)
        if routed is None:
            return stripe_error(404, f"Unrecognized request URL ({call.method}: {call.path}).")
        route, ids = routed
        with self._state:
            return self._idempotent(call, lambda: route(call.params, ids))

    def _route(self, call: StripeCall) -> tuple[_Route, tuple[str, ...]] | None:
        for method, pattern, route in self._routes:
            match = pattern.fullmatch(call.path)
            if method == call.method and match:
                return route, match.groups()
        return None

    def _idempotent(self, call: StripeCall, run: Callable[[], Canned]) -> Canned:
        """Replay the saved answer for a reused key; refuse a reused key with different parameters."""
        if call.method != "POST" or not call.idempotency_key:
            return run()
        saved = self._replays.get(call.idempotency_key)
        if saved is not None:
            if saved[:2] != (call.path, call.params):
                return stripe_error(400, "Keys for idempotent requests can only be used with the same parameters "
                                    "they were first used with.", type="idempotency_error")
            return attrs.evolve(saved[2], headers={**saved[2].headers, "idempotent-replayed": "true"})
        answer = run()
        if answer.status < 400:
            self._replays[call.idempotency_key] = (call.path, call.params, answer)
        return answer

    def _list_customers(self, params: dict[str, Any], _: tuple[str, ...]) -> Canned:
        found = [c for c in self.customers.values() if "email" not in params or c["email"] == params["email"]]
        found.sort(key=lambda c: c["created"], reverse=True)
        return _list(found[: int(params.get("limit", 10))], "/v1/customers")

    def _search_customers(self, params: dict[str, Any], _: tuple[str, ...]) -> Canned:
        clauses = _parse_query(params.get("query", ""))
        if clauses is None or any(field not in ("email", "phone") for field, _ in clauses):
            return stripe_error(400, f"Invalid search query: {params.get('query')!r}", param="query")
        found = [c for c in self.customers.values() if all(_matches(c, f, v) for f, v in clauses)]
        page = found[: int(params.get("limit", 10))]
        return Canned(200, {"object": "search_result", "data": copy.deepcopy(page), "has_more": len(found) > len(page),
                            "next_page": None, "url": "/v1/customers/search"})

    def _create_customer(self, params: dict[str, Any], _: tuple[str, ...]) -> Canned:
        created = objects.customer(params.get("email"), params.get("phone"), name=params.get("name"))
        created["metadata"] = params.get("metadata", {})
        self.customers[created["id"]] = created
        return Canned(200, copy.deepcopy(created))

    def _get_customer(self, _: dict[str, Any], ids: tuple[str, ...]) -> Canned:
        found = self.customers.get(ids[0])
        return Canned(200, copy.deepcopy(found)) if found else missing("customer", ids[0])

    def _update_customer(self, params: dict[str, Any], ids: tuple[str, ...]) -> Canned:
        if ids[0] not in self.customers:
            return missing("customer", ids[0])
        self.customers[ids[0]].update({k: v for k, v in params.items() if k in ("email", "phone", "name", "metadata")})
        return Canned(200, copy.deepcopy(self.customers[ids[0]]))

    def _create_session(self, params: dict[str, Any], _: tuple[str, ...]) -> Canned:
        problem = _session_problem(params, self.customers)
        if problem is not None:
            return problem
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in params["line_items"])
        session = objects.checkout_session(
            mode=params["mode"], customer_id=params.get("customer"), amount_total=total,
            metadata=params.get("metadata"), success_url=params["success_url"], cancel_url=params["cancel_url"],
        )
        session["allow_promotion_codes"] = params.get("allow_promotion_codes") == "true"
        self.sessions[session["id"]] = session
        self._session_params[session["id"]] = params
        return Canned(200, copy.deepcopy(session))

    def _get_session(self, params: dict[str, Any], ids: tuple[str, ...]) -> Canned:
        found = self.sessions.get(ids[0])
        if found is None:
            return missing("checkout.session", ids[0])
        shown = copy.deepcopy(found)
        for field, table in (("customer", self.customers), ("subscription", self.subscriptions)):
            if field in params.get("expand", []) and shown[field] in table:
                shown[field] = copy.deepcopy(table[shown[field]])
        return Canned(200, shown)

    def _get_subscription(self, _: dict[str, Any], ids: tuple[str, ...]) -> Canned:
        found = self.subscriptions.get(ids[0])
        return Canned(200, copy.deepcopy(found)) if found else missing("subscription", ids[0])

    def _cancel_subscription(self, _: dict[str, Any], ids: tuple[str, ...]) -> Canned:
        found = self.subscriptions.get(ids[0])
        # Real Stripe answers a second cancel as if the subscription did not exist (stripe/stripe-go#1887).
        if found is None or found["status"] == "canceled":
            return missing("subscription", ids[0])
        now = int(time.time())
        found.update(status="canceled", canceled_at=now, ended_at=now,
                     cancellation_details={"comment": None, "feedback": None, "reason": "cancellation_requested"})
        return Canned(200, copy.deepcopy(found))


    def _create_portal_session(self, params: dict[str, Any], _: tuple[str, ...]) -> Canned:
        """A Billing Portal session as Stripe answers it (POST /v1/billing_portal/sessions)."""
        customer = params.get("customer")
        if not customer:
            return stripe_error(400, "Missing required param: customer.", code="parameter_missing",
                                param="customer")
        if customer not in self.customers:
            return stripe_error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        session_id = objects.new_id("bps")
        return Canned(200, {
            "id": session_id, "object": "billing_portal.session", "configuration": objects.new_id("bpc"),
            "created": int(time.time()), "customer": customer, "flow": None, "livemode": False, "locale": None,
            "on_behalf_of": None, "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{session_id}",
        })


def _list(data: list[dict[str, Any]], url: str) -> Canned:
    return Canned(200, {"object": "list", "data": copy.deepcopy(data), "has_more": False, "url": url})


def _parse_query(query: str) -> list[tuple[str, str]] | None:
    """The `field:'value'` clauses of a search query (AND only), unescaped; None when it does not parse."""
    clauses, position = [], 0
    while position < len(query):
        match = _CLAUSE.match(query, position)
        if match is None or match.end() == position:
            return None
        value = match.group(2) if match.group(2) is not None else match.group(3)
        clauses.append((match.group(1), re.sub(r"\\(.)", r"\1", value)))
        position = match.end()
    return clauses or None


def _matches(customer: dict[str, Any], field: str, value: str) -> bool:
    """Search's `:` is an exact match, case-insensitive (phone compared as stored)."""
    stored = customer.get(field)
    return stored is not None and (stored.lower() == value.lower() if field == "email" else stored == value)


def _session_problem(params: dict[str, Any], customers: dict[str, Any]) -> Canned | None:
    """The 400 real Stripe gives for the mistakes an adapter could make, or None."""
    if params.get("mode") not in ("payment", "subscription", "setup"):
        return stripe_error(400, "Missing required param: mode.", code="parameter_missing", param="mode")
    if not params.get("line_items"):
        return stripe_error(400, "line_items is required in payment mode.", param="line_items")
    if "customer" in params and "customer_email" in params:
        return stripe_error(400, "You may only specify one of these parameters: customer, customer_email.")
    if "customer" in params and params["customer"] not in customers:
        return stripe_error(400, f"No such customer: '{params['customer']}'", code="resource_missing", param="customer")
    recurring = any("recurring" in item.get("price_data", {}) for item in params["line_items"])
    if recurring != (params["mode"] == "subscription"):
        return stripe_error(400, "You must use mode=subscription exactly when a line item is recurring.",
                            param="mode")
    return None
