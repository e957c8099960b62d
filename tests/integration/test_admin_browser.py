"""The admin site in Chromium, as an organiser on a phone-sized screen (390 px) uses it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.integration.browser import launch_chromium, require_chromium
from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fast_container, start_app
from tests.integration.test_bird_webhook import channels_body
from weft.config import Settings
from weft.domain.journey import Journey, Step

CHROMIUM = require_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'weft.db'}", public_url="http://127.0.0.1",
                        admin_token=ADMIN_TOKEN, link_secret="admin-browser-secret", quiet_hours="off",
                        scheduler=False)
    app = start_app(fast_container(settings))
    yield app
    app.stop()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, running: RunningApp, console_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=str(running.client.base_url).rstrip("/"),
                                  viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    tab = context.new_page()

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    tab.on("console", record)
    yield tab
    context.close()


def sign_in(page: Page, token: str = ADMIN_TOKEN) -> None:
    page.goto("/admin/")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def text_in(app: RunningApp, text: str, message_id: str, phone: str) -> None:
    response = app.client.post("/bird-sms-webhook", content=channels_body(text, message_id, phone))
    assert response.status_code == 200, response.text


def fits_the_screen(page: Page) -> bool:
    return bool(page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1"))


def test_an_organiser_signs_in_and_sees_the_overview_on_a_phone(page: Page, console_errors: list[str]) -> None:
    sign_in(page)

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("[data-figure=members]")).to_have_text("0")
    assert fits_the_screen(page)
    assert console_errors == []


def test_a_wrong_token_is_told_so_and_stays_on_the_sign_in_page(page: Page) -> None:
    sign_in(page, "not-the-token")

    expect(page.get_by_role("alert")).to_have_text("That token is not right.")
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_a_form_whose_csrf_token_was_tampered_with_is_refused(page: Page) -> None:
    sign_in(page)
    page.locator("form[action='/admin/sign-out'] input[name=csrf]").evaluate("input => input.value = 'forged'")

    page.get_by_role("button", name="Sign out").click()

    expect(page.locator("body")).to_contain_text("This form has expired")
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # still signed in


def test_a_member_is_found_by_a_differently_written_number(page: Page, running: RunningApp) -> None:
    text_in(running, "LOVE", "love-1", "+14155550123")
    running.wait_for(lambda: bool(running.admin("/api/admin/subscribers").json()["subscribers"]))
    sign_in(page)

    page.get_by_role("link", name="Members", exact=True).click()
    page.get_by_label("Phone or email").fill("(415) 555-0123")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="+14155550123").click()

    expect(page.locator("[data-field=consent]")).to_have_text("subscribed")
    expect(page.locator("body")).to_contain_text("“LOVE”")
    assert fits_the_screen(page)


def test_retrying_a_failed_journey_queues_its_failed_step(page: Page, running: RunningApp) -> None:
    store, now = running.container.store(), running.container.clock().now()
    journey = Journey(id="journey-1", payment_id="pay-1", started_at=now)
    journey.fail(Step.EMAIL_SENT, now, "the SMTP server timed out", transient=True)
    # Playwright's sync API runs an event loop in this thread: write through the store from another one.
    writer = threading.Thread(target=lambda: asyncio.run(store.transaction(lambda tx: tx.journeys.save(journey))))
    writer.start()
    writer.join()
    sign_in(page)

    page.get_by_role("link", name="Journeys", exact=True).click()
    expect(page.locator("[data-journey=journey-1]")).to_contain_text("the SMTP server timed out")
    page.locator("[data-journey=journey-1]").get_by_role("button", name="Retry").click()

    expect(page.get_by_role("status")).to_have_text("Retrying email_sent.")


def test_a_campaign_is_previewed_then_sent_after_confirming(page: Page, running: RunningApp) -> None:
    text_in(running, "LOVE", "love-1", "+14155550123")
    running.wait_for(lambda: bool(running.admin("/api/admin/subscribers").json()["subscribers"]))
    joined = running.client.post("/api/stripe/create-checkout-session",
                                 json={"tier": "free", "email": "ada@example.org", "phone": "+14155550123"})
    assert joined.status_code == 200, joined.text
    sign_in(page)

    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.get_by_role("button", name="Preview this month's message").click()
    expect(page.locator("[data-figure=eligible]")).to_have_text("1")
    assert running.admin("/api/admin/campaigns").json()["campaigns"] == []  # a preview sends nothing
    page.get_by_role("button", name="Yes, send this month's message").click()

    expect(page.get_by_role("status")).to_contain_text("care message (20")
    expect(page.get_by_role("status")).to_contain_text("has started")
    running.wait_for(lambda: running.admin("/api/admin/campaigns").json()["campaigns"][0]["sent"] == 1)


def test_the_charts_draw_the_texts_that_went_out(page: Page, running: RunningApp,
                                                  console_errors: list[str]) -> None:
    for index in range(3):
        text_in(running, "LOVE", f"love-{index}", f"+1415555012{index}")
    running.wait_for(lambda: sum(m["status"] == "sent" for m in
                                 running.admin("/api/admin/messages").json()["messages"]) == 3)
    sign_in(page)

    expect(page.locator("[data-figure=sms-rate]")).to_have_text("100.0%")
    assert page.locator("svg.chart rect").count() >= 2
    page.get_by_role("link", name="Delivery", exact=True).click()
    expect(page.locator("svg.chart").first).to_be_visible()
    assert "3 sent" in (page.locator("svg.chart rect title").first.text_content() or "")
    assert fits_the_screen(page)
    assert console_errors == []
