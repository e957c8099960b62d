"""The landing and success pages tell a member the truth, in Chromium: what happens with texts after a sign-up,
the button for the chosen tier, the phone the page will use, the choice kept across a reload and a cancelled
checkout, Custom amounts as people write them, and what a careful member or carrier reviewer looks for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.browser import launch_chromium, proxy_public_url, require_chromium
from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fast_container, start_app
from tests.integration.test_bird_webhook import channels_body
from tests.integration.test_landing_page_browser import EMAIL, LINK_SECRET, PHONE, PUBLIC_URL, link_for
from weft.config import Settings

CHROMIUM = require_chromium()
TERMS = "https://maple.example/terms"
PRIVACY = "https://maple.example/privacy"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'weft.db'}", public_url=PUBLIC_URL,
                    admin_token=ADMIN_TOKEN, link_secret=LINK_SECRET)


@pytest.fixture
def running(settings: Settings) -> Iterator[RunningApp]:
    app = start_app(fast_container(settings))
    yield app
    app.stop()


def open_page(browser: Browser, app: RunningApp) -> Page:
    app_url = str(app.client.base_url).rstrip("/")
    context = browser.new_context(base_url=app_url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    proxy_public_url(context, PUBLIC_URL, app_url)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, running: RunningApp) -> Iterator[Page]:
    opened = open_page(browser, running)
    yield opened
    opened.context.close()


def join_free(page: Page) -> None:
    page.locator("#continue").click()
    page.get_by_label("Email").fill(EMAIL)
    page.locator("#contact-submit").click()
    page.wait_for_url(re.compile(r"/success\?session_id="))


def test_an_unproven_sign_up_is_told_to_check_its_phone_and_reply_yes(page: Page) -> None:
    page.goto(f"/?phone={PHONE.replace('+', '%2B')}")
    join_free(page)
    expect(page.get_by_role("heading", name="Check your phone")).to_be_visible(timeout=20_000)
    expect(page.locator("#next-steps")).to_contain_text("Reply YES to that text to confirm your membership")
    expect(page.locator("#next-steps")).not_to_contain_text("welcome text")


def test_a_number_that_opted_out_is_told_so_and_how_to_rejoin(page: Page, running: RunningApp) -> None:
    assert running.client.post("/bird-sms-webhook", content=channels_body("STOP", "stop-1", PHONE)).status_code == 200
    running.wait_for(lambda: running.admin(f"/api/admin/subscribers/{PHONE}").json().get("consent") == "opted_out")
    page.goto(f"/?phone={PHONE.replace('+', '%2B')}")
    join_free(page)
    expect(page.get_by_role("heading", name="Thank you for joining Community Weft")).to_be_visible(timeout=20_000)
    expect(page.locator("#next-steps")).to_have_text(
        "Your membership is recorded, but this number opted out of our texts, so we won't text you. "
        "To get texts again, text START or LOVE to us.")


def test_a_proven_sign_up_is_told_to_look_out_for_the_welcome_text(page: Page) -> None:
    page.goto(link_for(PHONE))
    join_free(page)
    expect(page.get_by_role("heading", name="Welcome to Community Weft!")).to_be_visible(timeout=20_000)
    expect(page.locator("#next-steps")).to_contain_text("Look out for a welcome text")


def test_the_free_button_says_join_for_free_and_a_paid_tiers_says_continue_to_payment(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#continue")).to_have_text("Join for free")
    page.get_by_role("radio", name="$10", exact=True).check()
    expect(page.locator("#continue")).to_have_text("Continue to payment")
    page.get_by_role("radio", name="Free").check()
    expect(page.locator("#continue")).to_have_text("Join for free")


def test_the_dialog_shows_the_phone_it_will_use_masked_with_a_change_link(page: Page) -> None:
    page.goto(link_for(PHONE))
    page.locator("#continue").click()
    expect(page.locator("#joining-as")).to_have_text(re.compile(r"Joining as \+1 415 ••• 0123\s*·\s*change"))
    expect(page.locator("#contact-phone")).to_be_hidden()
    page.get_by_role("button", name="change").click()
    expect(page.locator("#contact-phone")).to_be_focused()
    expect(page.locator("#contact-phone")).to_have_value(PHONE)
    expect(page.locator("#joining-as")).to_be_hidden()


def test_without_a_known_phone_the_dialog_asks_for_one(page: Page) -> None:
    page.goto("/")
    page.locator("#continue").click()
    expect(page.locator("#contact-phone")).to_be_visible()
    expect(page.locator("#joining-as")).to_be_hidden()


def test_a_server_refusal_of_the_phone_is_shown_for_people_next_to_the_phone_field(page: Page) -> None:
    page.goto("/")
    page.locator("#continue").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Mobile phone").fill("12345")
    page.locator("#contact-submit").click()
    expect(page.locator("#contact-phone-error")).to_have_text(
        "That phone number doesn't look complete — include the area code")
    expect(page.locator("#contact-phone")).to_be_visible()


def test_the_tier_choice_survives_a_reload(page: Page) -> None:
    page.goto("/")
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill("1,000")
    page.get_by_role("radio", name="Monthly").check()
    page.reload()
    expect(page.get_by_role("radio", name="Custom")).to_be_checked()
    expect(page.get_by_role("radio", name="Monthly")).to_be_checked()
    expect(page.locator("#custom-amount")).to_have_value("1,000")
    expect(page.locator("#continue")).to_have_text("Continue to payment")


def test_the_tier_choice_survives_a_cancelled_checkout(page: Page) -> None:
    page.goto(link_for(PHONE))
    page.get_by_role("radio", name="$50", exact=True).check()
    page.get_by_role("radio", name="Monthly").check()
    page.locator("#continue").click()
    page.get_by_label("Email").fill(EMAIL)
    page.locator("#contact-submit").click()
    page.wait_for_url(re.compile(r"/test-checkout/cs_test_local_"))
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(re.compile(r"/\?phone="))
    expect(page.get_by_role("radio", name="$50", exact=True)).to_be_checked()
    expect(page.get_by_role("radio", name="Monthly")).to_be_checked()


def test_a_new_tab_starts_on_free(browser: Browser, running: RunningApp) -> None:
    first = open_page(browser, running)
    first.goto("/")
    first.get_by_role("radio", name="$25", exact=True).check()
    second = first.context.new_page()
    second.goto("/")
    expect(second.get_by_role("radio", name="Free")).to_be_checked()
    first.context.close()


@pytest.mark.parametrize(("amount", "summary", "dollars"), [("1,000", "$1,000 one-time", 1000),
                                                           ("$25", "$25 one-time", 25)])
def test_custom_amounts_are_taken_as_people_write_them(page: Page, amount: str, summary: str, dollars: int) -> None:
    page.goto(link_for(PHONE))
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill(amount)
    page.locator("#continue").click()
    expect(page.locator("#contact-summary")).to_have_text(summary)
    page.get_by_label("Email").fill(EMAIL)
    with page.expect_request("**/api/stripe/create-checkout-session") as request:
        page.locator("#contact-submit").click()
    assert request.value.post_data_json["amount"] == dollars
    page.wait_for_url(re.compile(r"/test-checkout/cs_test_local_"))


def test_a_custom_amount_with_cents_is_refused_with_the_reason(page: Page) -> None:
    page.goto("/")
    page.get_by_role("radio", name="Custom").check()
    page.locator("#custom-amount").fill("12.50")
    page.locator("#continue").click()
    expect(page.locator("#custom-amount-error")).to_have_text(
        "Amounts are in whole dollars: enter 12 or 13, not 12.50")
    expect(page.locator("#contact-dialog")).to_be_hidden()


def test_the_landing_page_says_what_members_get_how_often_who_to_ask_and_who_sends(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#what-you-get")).to_have_text(
        "Members get 1 care message a month by text from our makers, and a welcome email. "
        "Questions? Contact support@example.org.")
    expect(page.locator("#sms-disclosure")).to_contain_text("up to 1 care message a month by SMS from Community Weft")
    expect(page.get_by_role("link", name="Terms")).to_have_count(0)
    expect(page.get_by_role("link", name="Privacy policy")).to_have_count(0)


def test_terms_and_privacy_links_are_shown_when_set(browser: Browser, settings: Settings) -> None:
    app = start_app(fast_container(attrs.evolve(settings, terms_url=TERMS, privacy_url=PRIVACY,
                                                program_name="Maple Circle", support_contact="help@maple.example")))
    page = open_page(browser, app)
    try:
        page.goto("/")
        expect(page.get_by_role("link", name="Terms")).to_have_attribute("href", TERMS)
        expect(page.get_by_role("link", name="Privacy policy")).to_have_attribute("href", PRIVACY)
        expect(page).to_have_title("Maple Circle")
        expect(page.get_by_role("heading", level=1)).to_have_text("Maple Circle")
        expect(page.locator("#sms-disclosure")).to_contain_text("by SMS from Maple Circle")
        expect(page.locator("#what-you-get")).to_contain_text("Contact help@maple.example.")
    finally:
        page.context.close()
        app.stop()
