"""The organisers' Airtable base kept in step by the real app, through pyairtable, against a loopback Airtable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from dependency_injector import providers

from tests.fakes import FixedClock
from tests.integration.conftest import RunningApp, fast_container, start_app
from tests.integration.loopback import Canned, LoopbackBird
from tests.integration.loopback_airtable import BASE_ID, NUMBERS, PAYMENTS, TOKEN, LoopbackAirtable
from tests.integration.test_bird_webhook import PHONE, applied, text_in
from weft.adapters.airtable.base import AirtableBase, RequestWindow
from weft.application.pacing import RateLimit
from weft.application.work_queue import RetryPolicy
from weft.config import Settings
from weft.domain.errors import MirrorRejected, MirrorUnavailable
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Subscriber

CHECKOUT = "/api/stripe/create-checkout-session"
OTHER = "+14155550199"


def with_airtable(settings: Settings, airtable: LoopbackAirtable) -> Settings:
    return attrs.evolve(settings, airtable_api_key=TOKEN, airtable_base_id=BASE_ID, airtable_api_url=airtable.url)


def mirrored_app(settings: Settings, airtable: LoopbackAirtable, rate: float = 50.0) -> RunningApp:
    container = fast_container(attrs.evolve(with_airtable(settings, airtable), airtable_requests_per_second=rate))
    container.mirror_poll_seconds.override(providers.Object(0.05))
    container.mirror_retry.override(providers.Object(RetryPolicy(base_delay=0.05, max_delay=0.2, lifetime=None)))
    container.mirror_rejected_delay.override(providers.Object(0.2))
    return start_app(container)


@pytest.fixture
def app(settings: Settings, airtable: LoopbackAirtable) -> Iterator[RunningApp]:
    running = mirrored_app(settings, airtable)
    yield running
    running.stop()


def row(airtable: LoopbackAirtable, table: str, key: str, value: str) -> dict[str, Any] | None:
    return next((r for r in airtable.rows(table) if r.get(key) == value), None)


def status(app: RunningApp) -> dict[str, Any]:
    return dict(app.admin("/api/admin/airtable").json())


def test_a_text_and_a_free_sign_up_reach_the_base_as_rows_the_organisers_know(
    app: RunningApp, airtable: LoopbackAirtable
) -> None:
    text_in(app, "LOVE", "love-1")
    applied(app)
    response = app.client.post(CHECKOUT, json={"tier": "free", "email": "ada@example.org", "phone": PHONE})
    assert response.status_code == 200, response.text

    app.wait_for(lambda: row(airtable, PAYMENTS, "Phone Number", PHONE) is not None)
    app.wait_for(lambda: status(app)["waiting"] == 0)
    number = row(airtable, NUMBERS, "Phone Number", PHONE)
    assert number is not None
    assert (number["Message"], number["Consent"]) == ("LOVE", "subscribed")
    assert number["Created"].endswith("Z")
    payment = row(airtable, PAYMENTS, "Phone Number", PHONE)
    assert payment is not None
    assert (payment["Email"], payment["Tier"], payment["Status"], payment["Stripe Session ID"][:5]) == (
        "ada@example.org", "free", "completed", "free_")
    assert "Amount" not in payment or payment["Amount"] == 0
    assert status(app)["last_pushed_at"] is not None


def test_a_number_that_changes_keeps_one_row_with_its_latest_state(app: RunningApp, airtable: LoopbackAirtable) -> None:
    text_in(app, "LOVE", "love-1")
    app.wait_for(lambda: row(airtable, NUMBERS, "Phone Number", PHONE) is not None)
    text_in(app, "STOP", "stop-1")

    app.wait_for(lambda: (row(airtable, NUMBERS, "Phone Number", PHONE) or {}).get("Message") == "STOP")
    assert [r["Consent"] for r in airtable.rows(NUMBERS)] == ["opted out"]


def test_an_airtable_outage_never_holds_up_a_webhook_and_the_copies_catch_up_in_order(
    app: RunningApp, airtable: LoopbackAirtable
) -> None:
    outage = [Canned(503, {"error": {"type": "SERVER_ERROR", "message": "Try again"}})] * 4
    airtable.answer_next(*outage)

    started = time.monotonic()
    text_in(app, "LOVE", "love-1")
    text_in(app, "STOP", "stop-1")
    assert time.monotonic() - started < 2.0
    app.wait_for(lambda: status(app)["last_error"] is not None)
    assert "503" in status(app)["last_error"]

    app.wait_for(lambda: status(app)["waiting"] == 0, timeout=10)
    final = row(airtable, NUMBERS, "Phone Number", PHONE)
    assert final is not None and (final["Message"], final["Consent"]) == ("STOP", "opted out")
    assert status(app)["last_error"] is None


def test_a_hanging_airtable_does_not_slow_the_webhooks(app: RunningApp, airtable: LoopbackAirtable) -> None:
    airtable.delay = 1.5

    timings = []
    for index in range(5):
        started = time.monotonic()
        text_in(app, "HELP", f"help-{index}", phone=f"+1415555020{index}")
        timings.append(time.monotonic() - started)

    assert max(timings) < 0.5, timings
    airtable.delay = 0.0
    app.wait_for(lambda: len(airtable.rows(NUMBERS)) == 5, timeout=15)


def test_a_field_the_base_lacks_is_reported_and_the_copy_lands_once_the_base_is_fixed(
    app: RunningApp, airtable: LoopbackAirtable
) -> None:
    del airtable.schema[NUMBERS]["Consent"]

    text_in(app, "LOVE", "love-1")

    app.wait_for(lambda: "UNKNOWN_FIELD_NAME" in (status(app)["last_error"] or ""))
    assert status(app)["waiting"] == 1
    airtable.schema[NUMBERS]["Consent"] = "singleSelect"
    app.wait_for(lambda: status(app)["waiting"] == 0, timeout=10)
    assert row(airtable, NUMBERS, "Phone Number", PHONE) is not None


def test_the_app_writes_to_the_base_no_faster_than_its_limit(
    settings: Settings, airtable: LoopbackAirtable, bird: LoopbackBird
) -> None:
    running = mirrored_app(settings, airtable, rate=5.0)
    try:
        for index in range(150):
            text_in(running, "HELP", f"help-{index}", phone=f"+14155502{index:03d}")
        running.wait_for(lambda: len(airtable.rows(NUMBERS)) == 150, timeout=30)
    finally:
        running.stop()

    times = sorted(r.at for r in airtable.writes())
    assert len(times) >= 15
    assert max(sum(1 for t in times if start <= t < start + 0.95) for start in times) <= 5
    assert (len(times) - 1) / (times[-1] - times[0]) <= 5.25
    assert max(len(r.json()["records"]) for r in airtable.writes()) <= 10


def test_the_admin_api_says_when_airtable_is_not_configured(settings: Settings) -> None:
    running = start_app(fast_container(settings))
    try:
        assert running.admin("/api/admin/airtable").json() == {"configured": False}
        assert running.client.get("/api/admin/airtable").status_code == 401
    finally:
        running.stop()


def test_the_oldest_waiting_change_is_shown_while_the_base_is_down(app: RunningApp, airtable: LoopbackAirtable) -> None:
    airtable.answer_next(*[Canned(500, {"error": "SERVER_ERROR"})] * 50)

    text_in(app, "LOVE", "love-1")

    app.wait_for(lambda: status(app)["failing"] == 1)
    found = status(app)
    assert found["waiting"] == 1 and found["oldest_change_at"] is not None
    assert found["last_pushed_at"] is None


# --- the adapter on its own -------------------------------------------------------------------------------------


def airtable_base(airtable: LoopbackAirtable, slept: list[float] | None = None) -> AirtableBase:
    clock = FixedClock()

    async def sleep(seconds: float) -> None:
        (slept if slept is not None else []).append(seconds)
        await clock.sleep(seconds)

    limit = RateLimit(5.0, monotonic=clock.monotonic, sleep=sleep)
    return AirtableBase(TOKEN, BASE_ID, NUMBERS, PAYMENTS, limit, api_url=airtable.url)


def a_member(phone: str = PHONE, message: str = "LOVE") -> Subscriber:
    subscriber = Subscriber.first_contact(PhoneNumber(phone), datetime(2026, 11, 1, tzinfo=UTC))
    subscriber.record_inbound(message, datetime(2026, 11, 1, tzinfo=UTC))
    return subscriber


async def test_a_429_holds_every_request_to_the_base_for_thirty_seconds(airtable: LoopbackAirtable) -> None:
    slept: list[float] = []
    base = airtable_base(airtable, slept)
    airtable.answer_next(Canned(429, {"errors": [{"error": "RATE_LIMIT_REACHED"}]}))

    with pytest.raises(MirrorUnavailable) as raised:
        await base.upsert_numbers([a_member()])
    await base.upsert_numbers([a_member()])

    assert raised.value.retry_after == 30
    assert sum(slept) >= 30
    assert len(airtable.writes()) == 2  # pyairtable did not retry the 429 on its own


async def test_an_upsert_sent_twice_leaves_one_row(airtable: LoopbackAirtable) -> None:
    base = airtable_base(airtable)

    await base.upsert_numbers([a_member(message="LOVE")])
    await base.upsert_numbers([a_member(message="STOP")])

    assert airtable.rows(NUMBERS) == [{"Phone Number": PHONE, "Message": "STOP", "Consent": "replies only",
                                       "Created": "2026-11-01T00:00:00.000Z", "Updated": "2026-11-01T00:00:00.000Z"}]


async def test_an_unreachable_airtable_is_a_transient_fault(airtable: LoopbackAirtable) -> None:
    limit = RateLimit(5.0)
    base = AirtableBase(TOKEN, BASE_ID, NUMBERS, PAYMENTS, limit, api_url="http://127.0.0.1:9")

    with pytest.raises(MirrorUnavailable, match="could not be reached"):
        await base.upsert_numbers([a_member()])


async def test_a_server_error_is_transient_and_an_unknown_field_is_a_refusal(airtable: LoopbackAirtable) -> None:
    base = airtable_base(airtable)
    airtable.answer_next(Canned(502, {"error": "BAD_GATEWAY"}))
    del airtable.schema[NUMBERS]["Message"]

    with pytest.raises(MirrorUnavailable, match="502"):
        await base.upsert_numbers([a_member()])
    with pytest.raises(MirrorRejected, match='UNKNOWN_FIELD_NAME: Unknown field name: "Message"'):
        await base.upsert_numbers([a_member()])


async def test_reading_a_table_follows_every_page(airtable: LoopbackAirtable) -> None:
    for index in range(250):
        airtable.add(NUMBERS, {"Phone Number": f"+14155551{index:03d}", "Message": "LOVE", "Consent": "subscribed"})

    rows = await airtable_base(airtable).read_numbers()

    assert len(rows) == 250 and len({r.phone for r in rows}) == 250
    assert rows[0].consent is Consent.SUBSCRIBED
    pages = [r for r in airtable.requests if r.method == "GET"]
    assert len(pages) == 3


def test_the_request_window_lets_five_go_in_any_second_counted_when_each_goes_out() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    window = RequestWindow(5.0, margin=0.05, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        window.take()
    assert slept == []
    window.take()
    assert slept == [pytest.approx(1.05)]
    now[0] += 0.5
    window.take()  # five went out in the last 1.05 s? no: four at 100.0 are older than that now
    assert len(slept) == 1
