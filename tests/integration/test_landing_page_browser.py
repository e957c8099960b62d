from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.browser import launch_chromium, proxy_public_url, require_chromium
from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fast_container, start_app
from weft.adapters.system import SystemClock
from weft.application.link_tokens import LinkTokens
from weft.application.phone_numbers import normalise_phone
from weft.config import Settings

CHROMIUM = require_chromium()
PUBLIC_URL = "http://127.0.0.1"
LINK_SECRET = "browser-test-link-secret"
PHONE = "+14155550123"
EMAIL = "jo@example.org"
SCREENSHOT = Path("/tmp/weft-landing.png")
TIERS = ["Free", "$5", "$10", "$25", "$50", "$75", "$100", "Custom"]
BOUNDS_MESSAGE = "Enter a whole-dollar amount between $1 and $1,000"
WELCOME = "Welcome to Community Weft!"
CHECKOUT_API = "**/api/stripe/create-checkout-session"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'weft.db'}", public_url=PUBLIC_URL,
        admin_token=ADMIN_TOKEN, link_secret=LINK_SECRET,
    )
    app = start_app(fast_container(settings))
    yield app
    app.stop()


@pytest.fixture
def page(browser: Browser, running: RunningApp) -> Iterator[Page]:
    app_url = str(running.client.base_url).rstrip("/")
    context = browser.new_context(base_url=app_url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    proxy_public_url(context, PUBLIC_URL, app_url)
    yield context.new_page()
    context.close()


def link_for(phone: str) -> str:
    token = LinkTokens(LINK_SECRET, 3600, SystemClock()).issue(normalise_phone(phone))
    return f"/?phone={quote(phone, safe='')}&t={quote(token, safe='')}"


def open_contact_dialog(page: Page, email: str = EMAIL) -> None:
    page.locator("#continue").click()
    expect(page.locator("#contact-dialog")).to_be_visible()
    page.get_by_label("Email").fill(email)


def checkout_request_body(page: Page, submit: str) -> dict[str, Any]:
    expect(page.locator("#contact-submit")).to_have_text(submit)
    with page.expect_request(CHECKOUT_API) as request:
        page.locator("#contact-submit").click()
    body = request.value.post_data_json
    assert isinstance(body, dict)
    return body


def expect_welcome(page: Page) -> None:
    page.wait_for_url(re.compile(r"/success\?session_id="))
    expect(page.get_by_role("heading", name=WELCOME)).to_be_visible(timeout=20_000)


def test_phone_from_the_link_is_prefilled_and_saved_to_local_storage(page: Page) -> None:
    page.goto("/?phone=%2B14155550123")
    expect(page.locator("#contact-phone")).to_have_value(PHONE)
    assert page.evaluate("localStorage.getItem('checkoutPhoneNumber')") == PHONE


def test_a_raw_plus_in_the_link_is_read_as_a_plus(page: Page) -> None:
    page.goto("/?phone=+14155550123")
    expect(page.locator("#contact-phone")).to_have_value(PHONE)


def test_phone_is_prefilled_from_local_storage_on_a_later_visit(page: Page) -> None:
    page.goto("/?phone=%2B14155550123")
    page.goto("/")
    expect(page.locator("#contact-phone")).to_have_value(PHONE)


def test_free_tier_is_selected_on_load(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("radio", name="Free")).to_be_checked()
    expect(page.locator("#payment-type-group")).to_be_hidden()
    expect(page.locator("#custom-amount-group")).to_be_hidden()


def test_the_eight_tiers_are_offered_as_radio_buttons(page: Page) -> None:
    page.goto("/")
    radios = page.locator("input[type=radio][name=tier]")
    expect(radios).to_have_count(len(TIERS))
    for label in TIERS:
        expect(page.get_by_role("radio", name=label, exact=True)).to_be_visible()


def test_test_mode_is_announced_on_the_landing_page(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_text("Test mode: payments are simulated")).to_be_visible()
    expect(page).to_have_title("Community Weft")


def test_paid_tiers_offer_one_time_or_monthly_defaulting_to_one_time(page: Page) -> None:
    page.goto("/")
    page.get_by_role("radio", name="$25", exact=True).check()
    expect(page.get_by_role("radio", name="One-time")).to_be_checked()
    expect(page.get_by_role("radio", name="Monthly")).not_to_be_checked()


@pytest.mark.parametrize("amount", ["0", "1001", "1,001", "ten"])
def test_custom_amount_outside_the_bounds_is_rejected_in_the_page(page: Page, amount: str) -> None:
    page.goto("/")
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill(amount)
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator("#custom-amount-error")).to_have_text(BOUNDS_MESSAGE)
    expect(page.locator("#contact-dialog")).to_be_hidden()


def test_custom_amount_within_the_bounds_is_accepted(page: Page) -> None:
    page.goto("/")
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill("25")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator("#contact-dialog")).to_be_visible()
    expect(page.locator("#custom-amount-error")).to_be_hidden()
    expect(page.locator("#contact-summary")).to_have_text("$25 one-time")


def test_free_sign_up_ends_on_the_confirmation_page(page: Page, running: RunningApp) -> None:
    page.goto(link_for(PHONE))
    open_contact_dialog(page)
    body = checkout_request_body(page, "Join for free")
    expect_welcome(page)
    assert body["tier"] == "free" and body["phone"] == PHONE and body["email"] == EMAIL
    assert body["token"]
    expect(page.locator("#detail-tier")).to_have_text("Free")
    expect(page.locator("#detail-phone")).to_have_text("+*******0123")
    payments = running.admin("/api/admin/payments")
    assert payments.status_code == 200
    assert "0123" in payments.text


def test_a_rejected_email_is_shown_next_to_the_email_field(page: Page) -> None:
    page.goto("/?phone=%2B14155550123")
    open_contact_dialog(page, email="jo@example")
    page.locator("#contact-submit").click()
    expect(page.locator("#contact-email-error")).to_have_text(
        "The part after the @ doesn't look complete — it's usually something like example.org")
    expect(page.locator("#contact-dialog")).to_be_visible()


def test_paid_tier_goes_through_the_test_checkout_to_the_confirmation_page(page: Page) -> None:
    page.goto(link_for(PHONE))
    page.get_by_role("radio", name="$10", exact=True).check()
    page.get_by_role("radio", name="Monthly").check()
    open_contact_dialog(page)
    body = checkout_request_body(page, "Go to payment")
    assert body["tier"] == "10" and body["payment_type"] == "monthly" and "amount" not in body
    page.wait_for_url(re.compile(r"/test-checkout/cs_test_local_"))
    expect(page.get_by_text("Test mode — no real payment is taken")).to_be_visible()
    page.get_by_role("button", name="Pay $10 (test)").click()
    expect_welcome(page)
    expect(page.locator("#detail-amount")).to_have_text("$10")
    expect(page.locator("#detail-cadence")).to_have_text("Monthly")


def test_custom_amount_is_sent_as_a_whole_number(page: Page) -> None:
    page.goto("/?phone=%2B14155550123")
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill("37")
    open_contact_dialog(page)
    body = checkout_request_body(page, "Go to payment")
    assert body["tier"] == "custom" and body["amount"] == 37 and body["payment_type"] == "one_time"
    page.wait_for_url(re.compile(r"/test-checkout/cs_test_local_"))
    expect(page.get_by_role("button", name="Pay $37 (test)")).to_be_visible()


@pytest.mark.parametrize("payload", ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">'])
def test_markup_in_the_phone_parameter_is_inert(page: Page, payload: str) -> None:
    page.goto(f"/?phone={quote(payload, safe='')}")
    page.get_by_role("button", name="Join for free").click()
    expect(page.locator("#contact-dialog")).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("form script, form img, dialog script, dialog img").count() == 0
    assert page.locator("#contact-phone").input_value() in ("", payload)
    assert page.evaluate("localStorage.getItem('checkoutPhoneNumber')") in (None, payload)


def test_free_sign_up_works_with_the_keyboard_alone(page: Page) -> None:
    page.goto(link_for(PHONE))
    tab_until(page, "tier-free")
    page.keyboard.press("Space")
    tab_until(page, "continue")
    page.keyboard.press("Enter")
    expect(page.locator("#contact-email")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#contact-dialog")).to_be_hidden()
    expect(page.locator("#continue")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(page.locator("#change-phone")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#contact-submit")).to_be_focused()
    page.keyboard.press("Enter")
    expect_welcome(page)


def tab_until(page: Page, element_id: str, limit: int = 15) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")


def test_landing_page_fits_a_phone_screen_with_large_tap_targets(page: Page) -> None:
    page.goto("/?phone=%2B14155550123")
    page.get_by_role("radio", name="Custom").check()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for target in page.locator("label.tier, label.choice, #continue").all():
        box = target.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
    page.get_by_role("radio", name="Free").check()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0


def test_an_unknown_test_checkout_is_not_found(running: RunningApp) -> None:
    response = running.client.get("/test-checkout/cs_test_local_unknown")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]


def pay_monthly(page: Page, tier: str) -> None:
    page.goto(link_for(PHONE))
    page.get_by_role("radio", name=tier, exact=True).check()
    page.get_by_role("radio", name="Monthly").check()
    open_contact_dialog(page)
    page.get_by_role("button", name="Go to payment").click()


def test_a_member_with_a_monthly_plan_who_picks_another_is_sent_to_the_portal_not_billed_twice(page: Page) -> None:
    pay_monthly(page, "$10")
    page.get_by_role("button", name="Pay $10 (test)").click()
    expect_welcome(page)

    pay_monthly(page, "$25")

    page.wait_for_url(re.compile(r"/test-portal/bps_test_"))
    expect(page.get_by_text("this page stands in for Stripe's customer portal")).to_be_visible()
    page.get_by_role("button", name="Cancel my monthly plan (test)").click()
    expect(page.get_by_text("Your monthly plan is cancelled")).to_be_visible()


def test_a_second_monthly_plan_for_the_same_email_from_another_phone_is_refused_with_what_to_do(page: Page) -> None:
    pay_monthly(page, "$10")
    page.get_by_role("button", name="Pay $10 (test)").click()
    expect_welcome(page)

    page.goto("/?phone=%2B14155550199")
    page.get_by_role("radio", name="$25", exact=True).check()
    page.get_by_role("radio", name="Monthly").check()
    open_contact_dialog(page)
    page.get_by_role("button", name="Go to payment").click()

    expect(page.get_by_text("already has a monthly plan", exact=False)).to_be_visible()
    expect(page.get_by_text("text MEMBERSHIP to us", exact=False)).to_be_visible()
