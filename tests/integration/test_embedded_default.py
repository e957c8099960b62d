"""The embedded default just works: links made by `weft simulate-sms` point at the running `weft serve` and stay
valid across restarts without WEFT_LINK_SECRET or WEFT_PUBLIC_URL, and an open test-mode checkout survives a
restart, whichever process runs the background work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.service import Service

PHONE = "+14155550123"
CHECKOUT = "/api/stripe/create-checkout-session"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Empty counts as unset: the embedded default, whatever the test runner's environment holds.
    return {"WEFT_DATABASE_URL": f"sqlite:///{tmp_path / 'weft.db'}", "WEFT_PUBLIC_URL": "", "NGROK_URL": "",
            "WEFT_LINK_SECRET": "", "STRIPE_SECRET_KEY": "", "WEFT_SMS_PROVIDER": "console",
            "WEFT_EMAIL_PROVIDER": "console", "WEFT_SCHEDULER": "off"}


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    running = Service(env, tmp_path / "serve.log").start()
    yield running
    running.stop()


def simulate(env: dict[str, str], cwd: Path, text: str) -> str:
    result = subprocess.run([sys.executable, "-m", "weft.entrypoints.cli", "simulate-sms", "--from", PHONE, text],
                            cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def payment_status(service: Service) -> str | None:
    payments = service.get("/api/admin/payments").json()["payments"]
    return str(payments[0]["status"]) if payments else None


def open_monthly_checkout(service: Service) -> str:
    response = service.post(CHECKOUT, json={"tier": "10", "payment_type": "monthly", "email": "ana@example.org",
                                            "phone": PHONE})
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


def pay(service: Service, checkout_url: str) -> None:
    assert httpx.post(service.url + checkout_url + "/pay", timeout=30).status_code == 303
    wait_for(lambda: payment_status(service) == "active")


def test_a_membership_link_from_simulate_sms_points_at_the_service_and_outlives_a_restart(
    service: Service, env: dict[str, str], tmp_path: Path
) -> None:
    checkout_url = open_monthly_checkout(service)
    page = httpx.get(service.url + checkout_url, timeout=30).text
    assert f'href="{service.url}/?phone=%2B14155550123"' in page  # the way back uses the port it listens on
    pay(service, checkout_url)

    out = simulate(env, tmp_path, "MEMBERSHIP")

    link = out.split("plan here: ")[1].split(" ")[0]
    assert link.startswith(f"{service.url}/membership?phone=%2B14155550123&t=")
    opened = httpx.get(link, follow_redirects=False, timeout=30)
    assert (opened.status_code, opened.headers["location"][:18]) == (303, "/test-portal/bps_t")
    service.stop()
    service.start()
    again = httpx.get(link, follow_redirects=False, timeout=30)
    assert again.status_code == 303


def test_the_generated_link_secret_is_kept_in_the_database_and_never_logged(
    service: Service, env: dict[str, str], tmp_path: Path
) -> None:
    simulate(env, tmp_path, "LOVE")
    engine = sa.create_engine(env["WEFT_DATABASE_URL"])
    with engine.connect() as connection:
        secret = connection.execute(sa.text("SELECT value FROM instance_values WHERE name = 'link_secret'")).scalar()
    engine.dispose()

    assert secret and len(secret) >= 32
    assert secret not in service.log.read_text()
    assert "WEFT_LINK_SECRET is not set" in service.log.read_text()


def test_an_open_test_checkout_survives_a_restart_and_pays_with_the_background_in_a_worker(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = Service(env, tmp_path / "first.log").start()
    try:
        checkout_url = open_monthly_checkout(first)
    finally:
        first.stop()
    restarted = Service(env, tmp_path / "second.log", args=["--background", "process"]).start()
    try:
        page = httpx.get(restarted.url + checkout_url, timeout=30)
        assert page.status_code == 200 and "Pay $10 (test)" in page.text
        pay(restarted, checkout_url)
        wait_for(lambda: restarted.get("/api/admin/journeys").json()["journeys"][0]["completed_at"] is not None)
    finally:
        restarted.stop()
