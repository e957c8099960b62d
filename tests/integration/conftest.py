from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from dependency_injector import providers

from tests.integration.loopback import LoopbackBird
from tests.integration.loopback_airtable import LoopbackAirtable
from tests.integration.loopback_stripe import LoopbackStripe
from tests.integration.test_email_adapters import Inbox, start_smtp
from weft.application.run_journeys import JourneyPolicy
from weft.application.work_queue import RetryPolicy
from weft.bootstrap import bootstrap
from weft.config import Settings
from weft.containers import Container
from weft.entrypoints.http.app import create_app

FIXTURES = Path(__file__).parent.parent / "fixtures"
ADMIN_TOKEN = "admin-secret-token"
SIGNING_KEY = "bird-test-signing-key"
PUBLIC_URL = "https://sms.example.com"
STRIPE_KEY = "sk_test_weft_loopback"
STRIPE_WEBHOOK_SECRET = "whsec_test_weft_loopback"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'weft.db'}"
        return
    base = os.environ.get("WEFT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("WEFT_TEST_POSTGRES_URL is not set")
    yield from _postgres_schema(base)


def _postgres_schema(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def airtable() -> Iterator[LoopbackAirtable]:
    server = LoopbackAirtable()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bird() -> Iterator[LoopbackBird]:
    server = LoopbackBird().start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, bird: LoopbackBird) -> Settings:
    return Settings(
        database_url=database_url,
        public_url=PUBLIC_URL,
        sms_provider="bird",
        bird_api_url=bird.url,
        bird_api_key="test-access-key",
        bird_workspace_id="ws-1",
        bird_channel_id="ch-default",
        bird_access_key_id="ak-1",
        bird_signing_key=SIGNING_KEY,
        admin_token=ADMIN_TOKEN,
        quiet_hours="off",
        scheduler=False,
    )


def fast_container(settings: Settings) -> Container:
    container = bootstrap(settings)
    container.sms_retry.override(providers.Object(RetryPolicy(base_delay=0.05, max_delay=0.2,
                                                              lifetime=timedelta(seconds=2))))
    container.cancellation_retry.override(providers.Object(RetryPolicy(base_delay=0.05, max_delay=0.2,
                                                                       lifetime=timedelta(seconds=2))))
    container.payment_event_retry.override(providers.Object(RetryPolicy(base_delay=0.2, max_delay=0.5,
                                                                        lifetime=None)))
    container.worker_poll_seconds.override(providers.Object(0.05))
    container.journey_policy.override(providers.Object(JourneyPolicy(email_delays=(0.01, 0.02),
                                                                     sms_wait_seconds=1.0)))
    container.care_settings.override(providers.Object(attrs.evolve(container.care_settings(), watch_seconds=0.2)))
    return container


@attrs.define
class RunningApp:
    """The real app on a real socket, with its lifespan (outbox worker) running."""

    container: Container
    client: httpx.Client
    server: uvicorn.Server
    thread: threading.Thread

    def admin(self, path: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.02)

    def message_statuses(self) -> list[str]:
        """The outbox's messages' delivery states, newest first (none until a reply is queued)."""
        return [m["status"] for m in self.admin("/api/admin/messages").json()["messages"]]

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.container.unwire()


def start_app(container: Container, background: bool = True) -> RunningApp:
    config = uvicorn.Config(create_app(container, background), host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("app did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningApp(container, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10), server, thread)


@pytest.fixture
def app(settings: Settings) -> Iterator[RunningApp]:
    running = start_app(fast_container(settings))
    yield running
    running.stop()


@pytest.fixture
def stripe_server() -> Iterator[LoopbackStripe]:
    server = LoopbackStripe(api_key=STRIPE_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = start_smtp(inbox)
    yield inbox, int(controller.port)
    controller.stop()


@pytest.fixture
def stripe_settings(
    settings: Settings, stripe_server: LoopbackStripe, smtp_inbox: tuple[Inbox, int]
) -> Settings:
    """Settings for the real Stripe adapter (against loopback Stripe), Bird SMS and SMTP email."""
    return attrs.evolve(
        settings, stripe_secret_key=STRIPE_KEY, stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        stripe_api_base=stripe_server.url, email_provider="smtp", smtp_host="127.0.0.1", smtp_port=smtp_inbox[1],
        smtp_tls="none", link_secret="link-secret-for-tests",
    )


@pytest.fixture
def stripe_app(stripe_settings: Settings) -> Iterator[RunningApp]:
    """The app on the real Stripe adapter (against loopback Stripe), Bird SMS and SMTP email."""
    running = start_app(fast_container(stripe_settings))
    yield running
    running.stop()
