"""Hostile and broken input gets a 4xx with a JSON error, changes nothing, and leaves no traceback in the log.

The first tests are the failures a fuzz run found, kept as regular tests; the last one is that fuzz run, with
Hypothesis driving every route of the real app over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import attrs
import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration import stripe_events as events
from tests.integration.conftest import (
    ADMIN_TOKEN,
    PUBLIC_URL,
    SIGNING_KEY,
    STRIPE_WEBHOOK_SECRET,
    RunningApp,
    fast_container,
    start_app,
)
from tests.integration.loopback_twilio import AUTH_TOKEN
from tests.integration.signing import channels_headers, twilio_signature
from tests.integration.test_bird_webhook import channels_body
from weft.adapters.sql.schema import metadata
from weft.config import Settings

BIRD = "/bird-sms-webhook"
STRIPE = "/api/stripe/webhook"
CHECKOUT = "/api/stripe/create-checkout-session"
TWILIO = "/twilio-sms-webhook"
TWILIO_STATUS = "/twilio-status"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def row_counts(app: RunningApp) -> dict[str, int]:
    """Rows per table, but for `leases`: the background runtime takes those on its own time, whatever comes in."""
    with app.container.engine().connect() as connection:
        return {t.name: int(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
                for t in metadata.sorted_tables if t.name != "leases"}


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def assert_refused(app: RunningApp, response: httpx.Response, before: dict[str, int], status: int = 400) -> str:
    """A 4xx whose JSON says what was wrong, and nothing stored; returns the error."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert row_counts(app) == before
    return error


def bird_post(app: RunningApp, body: bytes, path: str = BIRD) -> httpx.Response:
    return app.client.post(path, content=body, headers=channels_headers(SIGNING_KEY, PUBLIC_URL + path, body))


def stripe_post(app: RunningApp, event: dict[str, Any] | bytes) -> httpx.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    headers = {"stripe-signature": events.sign(body, STRIPE_WEBHOOK_SECRET), "content-type": "application/json"}
    return app.client.post(STRIPE, content=body, headers=headers)


def stored_text(app: RunningApp, provider_id: str) -> str:
    with app.container.engine().connect() as connection:
        table = metadata.tables["inbound_messages"]
        text = connection.execute(sa.select(table.c.text).where(table.c.provider_id == provider_id)).scalar()
    assert isinstance(text, str)
    return text


def test_json_nested_a_thousand_deep_is_a_400_naming_the_depth(stripe_app: RunningApp) -> None:
    before = row_counts(stripe_app)
    response = stripe_app.client.post(CHECKOUT, content=b"[" * 1000 + b"]" * 1000,
                                      headers={"content-type": "application/json"})
    assert "deeper" in assert_refused(stripe_app, response, before)
    nested: Any = {"tier": "free"}
    for _ in range(40):
        nested = {"a": nested}
    response = stripe_app.client.post(CHECKOUT, json=nested)
    assert "deeper than 32" in assert_refused(stripe_app, response, before)


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_an_audit_time_outside_the_calendar_in_utc_is_a_400(stripe_app: RunningApp, since: str) -> None:
    response = stripe_app.client.get("/api/admin/audit", params={"since": since}, headers=ADMIN)
    assert "outside the years" in assert_refused(stripe_app, response, row_counts(stripe_app))


@pytest.mark.parametrize(("text", "stored"), [("LO\ud800VE", "LO\ufffdVE"), ("LO\x00VE", "LOVE")])
def test_half_an_emoji_or_a_nul_in_a_bird_text_is_cleaned_and_the_text_kept(
    stripe_app: RunningApp, text: str, stored: str
) -> None:
    response = bird_post(stripe_app, channels_body(text, "m-odd"))
    assert response.json() == {"status": "received"}
    assert stored_text(stripe_app, "m-odd") == stored


def test_a_text_longer_than_an_sms_can_carry_is_cut_with_a_note(stripe_app: RunningApp) -> None:
    assert bird_post(stripe_app, channels_body("x" * 5000, "m-long")).json() == {"status": "received"}
    text = stored_text(stripe_app, "m-long")
    assert len(text) == 1600 and text.endswith("more characters]")


@pytest.mark.parametrize(("event_id", "session_id"), [
    ("evt_\ud800", "cs_test_1"), ("evt_\x00", "cs_test_1"), ("evt_" + "e" * 125, "cs_test_1"),
    ("evt_test_1", "cs_\ud800"), ("evt_test_1", "cs_\x00"),
])
def test_a_stripe_event_with_an_unstorable_id_is_a_400(stripe_app: RunningApp, event_id: str, session_id: str) -> None:
    event = events.checkout_session_completed(
        events.checkout_session(mode="payment", customer_id=None, amount_total=1000, id=session_id))
    event["id"] = event_id
    before = row_counts(stripe_app)
    assert_refused(stripe_app, stripe_post(stripe_app, event), before)


@pytest.mark.parametrize("token", ["\ud800", "\x00", "f" * 10_240])
def test_a_checkout_token_that_cannot_be_ours_is_a_400_on_the_token(stripe_app: RunningApp, token: str) -> None:
    form = {"tier": "free", "email": "ana@example.org", "phone": "+14155550123", "token": token}
    before = row_counts(stripe_app)
    response = stripe_app.client.post(CHECKOUT, content=json.dumps(form).encode(),
                                      headers={"content-type": "application/json"})
    assert_refused(stripe_app, response, before)
    assert response.json()["field"] in ("token", "body")


@pytest.mark.parametrize("path", ["/api/admin/journeys/%00/retry", "/api/stripe/session?session_id=%00",
                                  "/api/admin/subscribers/%00", "/api/admin/campaigns/%00"])
def test_a_nul_in_a_path_or_query_is_a_400(stripe_app: RunningApp, path: str) -> None:
    before = row_counts(stripe_app)
    method = "POST" if path.endswith("retry") else "GET"
    response = stripe_app.client.request(method, path, headers=ADMIN)
    assert "NUL" in assert_refused(stripe_app, response, before)


def test_a_client_that_hangs_up_mid_body_leaves_one_info_line(
    stripe_app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = stripe_app.client.base_url.host, stripe_app.client.base_url.port
    with caplog.at_level(logging.INFO):
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"POST /api/stripe/create-checkout-session HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tier\":")
        deadline = time.monotonic() + 5
        while not any("disconnected" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert tracebacks(caplog) == []
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in lines] == [(logging.INFO, None)]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_bird_route_refuses_a_body_over_its_limit_before_reading_it(stripe_app: RunningApp, method: str) -> None:
    before = row_counts(stripe_app)
    body = b"body=LOVE&originator=14155550123&pad=" + b"x" * (300 * 1024)
    response = stripe_app.client.request(method, f"{BIRD}?originator=14155550123&body=LOVE", content=body,
                                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert "262144 bytes" in assert_refused(stripe_app, response, before, status=413)


def test_any_other_route_refuses_a_body_over_16_kb(stripe_app: RunningApp) -> None:
    before = row_counts(stripe_app)
    for method, path in [("GET", "/"), ("GET", "/api/admin/messages"), ("POST", CHECKOUT), ("GET", "/healthz")]:
        response = stripe_app.client.request(method, path, content=b"x" * (17 * 1024), headers=ADMIN)
        assert "16384 bytes" in assert_refused(stripe_app, response, before, status=413)


# --- the fuzz run ----------------------------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\ud800", "\x00", "\udfff\ud83d", "💛", "../../etc/passwd", "' OR 1=1 --", "%00", "9" * 400,
                     "9999-12-31T23:59:59-01:00", "-1", "1e309", "NaN", "+14155550123", "STOP", "LOVE", " "]),
)
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ODD_TEXT
JSON_VALUES: st.SearchStrategy[Any] = st.deferred(
    lambda: JSON_LEAVES | st.lists(JSON_VALUES, max_size=3) | st.dictionaries(ODD_TEXT, JSON_VALUES, max_size=3))
FORM_KEYS = ["tier", "email", "phone", "amount", "payment_type", "token", "id", "type", "data", "event", "payload",
             "originator", "body", "service", "From", "To", "Body", "MessageSid", "MessageStatus", "ErrorCode"]
JSON_OBJECTS = st.dictionaries(st.sampled_from(FORM_KEYS) | ODD_TEXT, JSON_VALUES, max_size=6)
BODIES = st.one_of(
    JSON_OBJECTS.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    st.just(b"[" * 2000),
    st.dictionaries(st.sampled_from(FORM_KEYS), ODD_TEXT, max_size=6).map(
        lambda form: urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in form.items()}).encode()),
    st.builds(lambda n: b'{"a":"' + b"x" * n + b'"}', st.integers(0, 300 * 1024)),
)
ROUTES = [
    ("POST", BIRD), ("GET", BIRD), ("POST", STRIPE), ("POST", CHECKOUT), ("GET", "/api/stripe/session"),
    ("GET", "/"), ("GET", "/success"), ("GET", "/healthz"), ("GET", "/test-checkout/{id}"),
    ("POST", "/test-checkout/{id}/pay"), ("GET", "/api/admin/payments"), ("GET", "/api/admin/payment-events"),
    ("GET", "/api/admin/journeys"), ("POST", "/api/admin/journeys/{id}/retry"), ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/subscribers"), ("GET", "/api/admin/subscribers/{id}"), ("GET", "/api/admin/messages"),
    ("GET", "/api/bird/send-monthly-messages"), ("POST", "/api/bird/send-monthly-messages"),
    ("GET", "/api/admin/campaigns"), ("GET", "/api/admin/campaigns/{id}"), ("POST", TWILIO), ("POST", TWILIO_STATUS),
    ("GET", "/api/admin/stats"), ("POST", "/api/bird/sync-automation"), ("GET", "/api/admin/airtable"),
]
QUERY_KEYS = ["since", "action", "all", "session_id", "challenge", "originator", "body", "phone", "t", "dry_run",
              "hours"]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    path_param = draw(ODD_TEXT.filter(lambda s: s.strip() not in ("", ".", "..")))
    path = template.replace("{id}", quote(path_param.encode("utf-8", "surrogatepass"), safe=""))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), ODD_TEXT, max_size=3))
    body = draw(BODIES) if method == "POST" or draw(st.booleans()) else b""
    content_type = draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain",
                                         "application/json; charset=utf-8", ""]))
    return {"method": method, "path": path, "query": query, "body": body, "content_type": content_type,
            "sign": draw(st.booleans()), "admin": draw(st.booleans())}


def send(app: RunningApp, request: dict[str, Any]) -> httpx.Response:
    query = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in request["query"].items()})
    url = httpx.URL(f"{request['path']}?{query}" if query else request["path"])
    headers = {"content-type": request["content_type"]} if request["content_type"] else {}
    body: bytes = request["body"]
    if request["admin"]:
        headers |= ADMIN
    if request["sign"] and request["path"] == BIRD:
        headers |= channels_headers(SIGNING_KEY, PUBLIC_URL + str(url.raw_path, "ascii"), body)
    if request["sign"] and request["path"] in (TWILIO, TWILIO_STATUS):
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        headers["x-twilio-signature"] = twilio_signature(AUTH_TOKEN, PUBLIC_URL + str(url.raw_path, "ascii"), form)
    if request["sign"] and request["path"] == STRIPE:
        headers["stripe-signature"] = events.sign(body, STRIPE_WEBHOOK_SECRET)
    return app.client.request(request["method"], url, content=body, headers=headers)


@pytest.fixture(params=["signing keys", "no signing keys"])
def fuzzed_app(request: pytest.FixtureRequest, stripe_settings: Settings) -> Iterator[RunningApp]:
    """The app with the Bird, Twilio and Stripe signing keys set (fuzzed webhooks are signed or not), or with none
    set (Bird's webhook then reads every body; Twilio's routes are closed; Stripe's refuses every event)."""
    keys = {"twilio_auth_token": AUTH_TOKEN} if request.param == "signing keys" else {
        "bird_signing_key": "", "stripe_webhook_secret": ""}
    running = start_app(fast_container(attrs.evolve(stripe_settings, **keys)))
    yield running
    running.stop()


@settings(max_examples=int(os.environ.get("WEFT_FUZZ_EXAMPLES", "120")), deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("WEFT_FUZZ_EXAMPLES"))
@given(request=requests())
@example(request={"method": "POST", "path": CHECKOUT, "query": {}, "body": b"[" * 1000 + b"]" * 1000,
                  "content_type": "application/json", "sign": False, "admin": False})
@example(request={"method": "GET", "path": "/api/admin/audit", "query": {"since": "9999-12-31T23:59:59-01:00"},
                  "body": b"", "content_type": "", "sign": False, "admin": True})
@example(request={"method": "POST", "path": BIRD, "query": {}, "content_type": "application/json", "sign": True,
                  "admin": False, "body": channels_body("\x00", "nul-id")})
@example(request={"method": "GET", "path": BIRD, "query": {"originator": "14155550123", "body": "LOVE"},
                  "body": b"x" * (300 * 1024), "content_type": "", "sign": False, "admin": False})
def test_fuzzed_requests_to_every_route_never_get_a_5xx_or_a_traceback_and_refusals_change_nothing(
    fuzzed_app: RunningApp, caplog: pytest.LogCaptureFixture, request: dict[str, Any]
) -> None:
    before = settled_counts(fuzzed_app)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        response = send(fuzzed_app, request)
    shown = brief(request)
    assert response.status_code < 500, (shown, response.text[:500])
    assert tracebacks(caplog) == [], shown
    if 400 <= response.status_code < 500:
        assert row_counts(fuzzed_app) == before, (shown, response.status_code, response.text[:500])
        if response.headers.get("content-type", "").startswith("application/json"):
            assert response.json().get("error"), (shown, response.text[:500])


def settled_counts(app: RunningApp) -> dict[str, int]:
    """Row counts once background work has stopped changing them (an accepted text is applied after its answer)."""
    counts = row_counts(app)
    for _ in range(100):
        time.sleep(0.03)
        again = row_counts(app)
        if again == counts:
            return counts
        counts = again
    raise AssertionError("background work kept changing the database")


def brief(request: dict[str, Any]) -> dict[str, Any]:
    body: bytes = request["body"]
    return {**request, "body": body[:200] + (f"... ({len(body)} bytes)".encode() if len(body) > 200 else b"")}
