"""The organisers' admin site over HTTP: signing in and out, the session cookie, CSRF, the one authentication
middleware over the site and the JSON API, and keyset pages."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from datetime import timedelta

import attrs
import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fast_container, start_app
from tests.integration.test_bird_webhook import PHONE, applied, text_in
from weft.application.unit_of_work import Lease, Transaction
from weft.config import Settings
from weft.domain.alerts import Alert, AlertKind
from weft.domain.messages import DeliveryStatus, Lane, MessageKind, OutboundSms
from weft.domain.phone import PhoneNumber
from weft.entrypoints.http.admin_auth import AdminArea

OTHER_TOKEN = "a-second-admin-token"


@pytest.fixture
def site(settings: Settings) -> Iterator[RunningApp]:
    running = start_app(fast_container(attrs.evolve(settings, admin_token=f"{ADMIN_TOKEN}, {OTHER_TOKEN}")))
    yield running
    running.stop()


def session_cookie(app: RunningApp, token: str = ADMIN_TOKEN) -> str:
    response = app.client.post("/admin/sign-in", data={"token": token, "next": "/admin/"})
    assert response.status_code == 303, response.text
    return str(response.cookies["weft_admin"])


@contextlib.contextmanager
def signed_in(app: RunningApp, token: str = ADMIN_TOKEN) -> Iterator[httpx.Client]:
    """A browser of its own, signed in. Its cookie is Secure (the public URL is https) and it speaks plain http to
    the test socket, as through a TLS-terminating proxy: it sends the cookie as the proxied browser would."""
    cookie = session_cookie(app, token)
    with httpx.Client(base_url=str(app.client.base_url), timeout=10,
                      headers={"Cookie": f"weft_admin={cookie}"}) as client:
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_signing_in_sets_a_strict_http_only_session_cookie_for_the_configured_hours(site: RunningApp) -> None:
    response = site.client.post("/admin/sign-in", data={"token": ADMIN_TOKEN, "next": "/admin/members"})

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/members"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("weft_admin=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert "Secure" in cookie  # the public URL is https


def test_the_cookie_is_not_marked_secure_on_a_plain_http_address(settings: Settings) -> None:
    running = start_app(fast_container(attrs.evolve(settings, public_url="http://127.0.0.1:8000",
                                                    admin_session_hours=2)))
    try:
        cookie = running.client.post("/admin/sign-in", data={"token": ADMIN_TOKEN}).headers["set-cookie"]
        assert "Secure" not in cookie and "Max-Age=7200" in cookie
    finally:
        running.stop()


def test_a_signed_in_browser_sees_the_pages_and_the_json_api(site: RunningApp) -> None:
    with signed_in(site) as browser:
        overview = browser.get("/admin/")
        assert overview.status_code == 200
        assert "Overview" in overview.text and overview.headers["cache-control"] == "no-store"
        assert browser.get("/api/admin/subscribers").json() == {"subscribers": [], "next": None}


def test_an_anonymous_visit_is_sent_to_sign_in_and_the_api_answers_401(site: RunningApp) -> None:
    page = site.client.get("/admin/members")

    assert page.status_code == 303
    location = httpx.URL(page.headers["location"])
    assert location.path == "/admin/sign-in" and httpx.URL(location.params["next"]).path == "/admin/members"
    form = site.client.get(page.headers["location"])
    assert 'name="next" value="/admin/members"' in form.text
    assert site.client.get("/api/admin/subscribers").status_code == 401


def test_every_admin_route_sits_in_the_one_mount_and_none_answers_without_a_sign_in(site: RunningApp) -> None:
    app = site.server.config.app
    areas = [route for route in app.routes if isinstance(route, AdminArea)]
    assert len(areas) == 1
    assert set(areas[0].prefixes) == {"/admin", "/api/admin", "/api/bird", "/metrics"}
    outside = [path for route in app.routes if (path := getattr(route, "path", ""))]
    assert not [path for path in outside if areas[0].owns(path)]  # no admin path is routed around the mount

    paths = _admin_paths(areas[0].routes)
    assert len(paths) > 25
    for path, methods in paths:
        for method in methods - {"HEAD"}:
            wrong = site.client.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401, (method, path)
            if path in ("/admin/sign-in", "/admin/sign-out"):
                continue  # the two anonymous routes: signing in and out are tested above and below
            answer = site.client.request(method, path)
            assert answer.status_code == 401 or (
                answer.status_code == 303 and "/admin/sign-in" in answer.headers["location"]), (method, path)


def test_a_wrong_bearer_token_outside_the_admin_is_no_concern_of_the_admin_middleware(site: RunningApp) -> None:
    assert site.client.get("/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 200
    assert site.client.get("/administrator", headers={"Authorization": "Bearer wrong"}).status_code == 404


def _admin_paths(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, set[str]]]:
    """Every admin route's path (its parameters filled in) and methods."""
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, Mount):
            found += _admin_paths(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = re.sub(r"{[^}]+}", "x", prefix + route.path)
            found.append((path, set(route.methods or ())))
    return found


def test_a_wrong_token_is_refused_and_the_sixth_try_in_a_minute_is_slowed_down(site: RunningApp) -> None:
    answers = [site.client.post("/admin/sign-in", data={"token": f"guess-{i}"}) for i in range(6)]

    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert "That token is not right." in answers[0].text
    assert "Too many wrong tokens" in answers[5].text
    assert "set-cookie" not in answers[0].headers
    # Even the right token waits out the minute from that address.
    assert site.client.post("/admin/sign-in", data={"token": ADMIN_TOKEN}).status_code == 429


def test_either_configured_token_signs_in_and_removing_one_ends_its_sessions(settings: Settings) -> None:
    both = attrs.evolve(settings, admin_token=f"{ADMIN_TOKEN},{OTHER_TOKEN}")
    first = start_app(fast_container(both))
    try:
        cookie = session_cookie(first, OTHER_TOKEN)
    finally:
        first.stop()
    rotated = start_app(fast_container(attrs.evolve(settings, admin_token=ADMIN_TOKEN)))
    try:
        refused = rotated.client.get("/api/admin/subscribers", headers={"Cookie": f"weft_admin={cookie}"})
        assert refused.status_code == 401
    finally:
        rotated.stop()


def test_a_forged_cookie_is_anonymous(site: RunningApp) -> None:
    payload, _, signature = session_cookie(site).partition(".")

    forged = site.client.get("/api/admin/subscribers",
                             headers={"Cookie": f"weft_admin={payload}.{'0' * len(signature)}"})

    assert forged.status_code == 401


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(site: RunningApp) -> None:
    with signed_in(site) as browser:
        refused = browser.post("/admin/sign-out", data={})
        forged = browser.post("/admin/sign-out", data={"csrf": "0" * 64})
        signed_out = browser.post("/admin/sign-out", data={"csrf": csrf_of(browser.get("/admin/").text)})

    assert (refused.status_code, forged.status_code) == (403, 403)
    assert "set-cookie" not in refused.headers
    assert signed_out.status_code == 303
    assert signed_out.headers["set-cookie"].startswith('weft_admin=""') and "Max-Age=0" in signed_out.headers[
        "set-cookie"]


def test_the_admin_site_says_it_is_disabled_without_a_token(settings: Settings) -> None:
    running = start_app(fast_container(attrs.evolve(settings, admin_token="")))
    try:
        page = running.client.get("/admin/sign-in")
        assert "The admin site is disabled" in page.text
        assert running.client.post("/admin/sign-in", data={"token": ""}).status_code == 403
    finally:
        running.stop()


def test_a_member_is_found_by_a_differently_written_number(site: RunningApp) -> None:
    text_in(site, "LOVE", "love-1")
    applied(site)

    with signed_in(site) as browser:
        found = browser.get("/admin/members", params={"q": "(415) 555-0123"})
        missing = browser.get("/admin/members", params={"q": "+1 415 555 0199"})
        detail = browser.get("/admin/members/%2B14155550123")

    assert 'href="/admin/members/%2B14155550123"' in found.text
    assert "No member matches." in missing.text
    assert "Consent history" in detail.text and "LOVE" in detail.text


def test_the_json_lists_page_by_cursor_and_refuse_a_bad_one(site: RunningApp) -> None:
    for index in range(5):
        text_in(site, "HELP", f"help-{index}", phone=f"+1415555020{index}")
    site.wait_for(lambda: len(site.admin("/api/admin/subscribers").json()["subscribers"]) == 5)

    seen, after = [], None
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        page = site.client.get("/api/admin/subscribers", params=params,
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        seen += [s["phone"] for s in page["subscribers"]]
        after = page["next"]
        if after is None:
            break
    bad = site.client.get("/api/admin/subscribers", params={"after": "not-a-cursor"},
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    too_many = site.client.get("/api/admin/subscribers", params={"limit": "501"},
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert sorted(seen) == [f"+1415555020{i}" for i in range(5)] and len(seen) == 5
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]


@pytest.mark.parametrize("target", ["https://evil.example/admin/", "//evil.example/admin", "/elsewhere"])
def test_sign_in_never_sends_a_browser_out_of_the_admin(site: RunningApp, target: str) -> None:
    response = site.client.post("/admin/sign-in", data={"token": ADMIN_TOKEN, "next": target})

    assert response.headers["location"] == "/admin/"


def test_the_overview_shows_an_active_alert_and_a_members_payments(site: RunningApp) -> None:
    now = site.container.clock().now()
    alert = Alert(AlertKind.DELIVERY_RATE, active=True, summary="Only 40% of texts went through in the last hour",
                  since=now, checked_at=now)
    asyncio.run(site.container.store().transaction(lambda tx: tx.alerts.save(alert)))
    text_in(site, "LOVE", "love-1")
    applied(site)
    joined = site.client.post("/api/stripe/create-checkout-session",
                              json={"tier": "free", "email": "ada@example.org", "phone": PHONE})
    assert joined.status_code == 200, joined.text

    with signed_in(site) as browser:
        overview = browser.get("/admin/").text
        detail = browser.get("/admin/members/%2B14155550123").text

    assert 'data-alert="delivery_rate"' in overview and "Only 40% of texts went through" in overview
    assert 'data-payment-status="completed"' in detail and "Journeys" in detail


def test_a_failure_behind_many_newer_texts_is_still_among_the_latest_failures(site: RunningApp) -> None:
    now = site.container.clock().now()
    later = now + timedelta(days=1)  # due then: the app's own worker leaves these texts alone

    def queue(tx: Transaction) -> None:
        tx.outbox.enqueue_once(OutboundSms("refused-1", PhoneNumber("+14155550199"), "Hello", MessageKind.CARE),
                               later, now - timedelta(hours=2))
        tx.outbox.enqueue_many([(OutboundSms(f"newer-{i}", PhoneNumber("+14155550198"), "Hi", MessageKind.CARE),
                                 later) for i in range(250)], now - timedelta(hours=1))

    def refuse(tx: Transaction) -> None:
        claimed = tx.outbox.claim(Lane.BROADCAST, Lease("test", later + timedelta(minutes=1)), later, 1)
        assert [e.message.id for e in claimed] == ["refused-1"]
        tx.outbox.record([attrs.evolve(claimed[0], status=DeliveryStatus.FAILED, attempts=1,
                                       error="21614: not a mobile number")])

    store = site.container.store()
    asyncio.run(store.transaction(queue))
    asyncio.run(store.transaction(refuse))

    with signed_in(site) as browser:
        page = browser.get("/admin/delivery").text
        failed = browser.get("/api/admin/messages?failed=1").json()
        unclear = browser.get("/api/admin/messages?failed=maybe")

    assert "21614: not a mobile number" in page and "+*******0199" in page
    assert [m["id"] for m in failed["messages"]] == ["refused-1"] and failed["next"] is None
    assert unclear.status_code == 400 and unclear.json() == {"error": "failed must be true or false"}
