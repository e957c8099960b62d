"""The monthly care message end to end: the real app over HTTP, the real SQL store (SQLite and PostgreSQL), the
real Bird adapter against a loopback Bird; and `weft serve` as a process, killed with SIGKILL mid-run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from tests.fakes import FixedClock
from tests.integration.conftest import RunningApp, fast_container, start_app
from tests.integration.loopback import Canned, LoopbackBird
from tests.integration.service import Service, member_phones, seed_members
from tests.integration.test_bird_webhook import text_in
from weft.adapters.sql import schema as t
from weft.adapters.sql.engine import create_engine
from weft.application.pacing import Pacer
from weft.application.work_queue import RetryPolicy
from weft.config import Settings
from weft.domain.care import CareMonth

THIS_MONTH = CareMonth.of(datetime.now(UTC))
CAMPAIGN = f"/api/admin/campaigns/{THIS_MONTH.campaign_id}"


def care_recipients(bird: LoopbackBird) -> Counter[str]:
    return Counter(r.json()["receiver"]["contacts"][0]["identifierValue"] for r in bird.accepted()
                   if r.json().get("reference", "").startswith("care:"))


def campaign(app: RunningApp) -> dict[str, Any]:
    response = app.admin(CAMPAIGN)
    assert response.status_code == 200, response.text
    return dict(response.json()["campaign"])


def finished(app: RunningApp) -> bool:
    return bool(campaign(app)["state"] == "finished")


def trigger(app: RunningApp) -> httpx.Response:
    return app.client.post("/api/bird/send-monthly-messages", headers={"Authorization": "Bearer admin-secret-token"})


def paced_app(settings: Settings, rate: float) -> RunningApp:
    container = fast_container(settings)
    container.pacer.override(providers.Object(Pacer(rate)))
    return start_app(container)


def test_a_run_reaches_every_eligible_member_exactly_once(app: RunningApp, bird: LoopbackBird,
                                                          settings: Settings) -> None:
    phones = member_phones(40)
    seed_members(settings.database_url, phones)
    text_in(app, "LOVE", "love-only", phone="+14155550177")  # texted, never signed up: not a member
    response = trigger(app)
    assert response.status_code == 202
    assert response.json()["campaign"]["month"] == THIS_MONTH.value
    app.wait_for(lambda: finished(app), timeout=20)
    assert care_recipients(bird) == Counter(phones)
    summary = campaign(app)
    assert (summary["eligible"], summary["sent"], summary["failed"], summary["pending"]) == (40, 40, 0, 0)
    assert summary["skipped"] == {"not_a_member": 1}
    references = [r.json()["reference"] for r in bird.accepted()]
    assert {f"care:{THIS_MONTH.value}:{p}" for p in phones} <= set(references)


def test_a_second_trigger_adds_nothing(app: RunningApp, bird: LoopbackBird, settings: Settings) -> None:
    seed_members(settings.database_url, member_phones(10))
    trigger(app)
    app.wait_for(lambda: finished(app), timeout=20)
    assert trigger(app).status_code == 202
    app.wait_for(lambda: finished(app) and campaign(app)["passes"] == 2, timeout=20)
    assert sum(care_recipients(bird).values()) == 10
    (listed,) = app.admin("/api/admin/campaigns").json()["campaigns"]
    assert (listed["id"], listed["sent"]) == (THIS_MONTH.campaign_id, 10)


def test_the_dry_run_previews_without_sending(app: RunningApp, bird: LoopbackBird, settings: Settings) -> None:
    seed_members(settings.database_url, member_phones(25))
    response = app.admin("/api/bird/send-monthly-messages?dryRun=true")
    body = response.json()
    assert (response.status_code, body["dry_run"], body["eligible"]) == (200, True, 25)
    assert len(body["recipients"]) == 20 and all("*" in r for r in body["recipients"])
    time.sleep(0.3)
    assert care_recipients(bird) == Counter()
    assert app.admin(CAMPAIGN).status_code == 404


def test_the_monthly_endpoints_need_the_admin_token(app: RunningApp) -> None:
    assert app.client.post("/api/bird/send-monthly-messages").status_code == 401
    assert app.client.get("/api/bird/send-monthly-messages?dryRun=true").status_code == 401
    assert app.client.get("/api/admin/campaigns").status_code == 401


def test_a_malformed_month_is_a_400_and_starts_nothing(app: RunningApp) -> None:
    response = app.client.post("/api/bird/send-monthly-messages?month=2026-13",
                               headers={"Authorization": "Bearer admin-secret-token"})
    assert response.status_code == 400
    assert "2026-12" in response.json()["error"]
    assert app.admin("/api/admin/campaigns").json()["campaigns"] == []


def test_stop_mid_run_wins(settings: Settings, bird: LoopbackBird) -> None:
    phones = member_phones(30)
    seed_members(settings.database_url, phones)
    app = paced_app(settings, rate=15)
    try:
        trigger(app)
        app.wait_for(lambda: len(care_recipients(bird)) >= 3)
        sent_before = set(care_recipients(bird))
        stopper = next(p for p in reversed(phones) if p not in sent_before)
        text_in(app, "STOP", "stop-mid-run", phone=stopper)
        after_stop = len(bird.requests)
        app.wait_for(lambda: finished(app), timeout=20)
    finally:
        app.stop()
    later = [r.json()["receiver"]["contacts"][0]["identifierValue"] for r in bird.requests[after_stop:]
             if r.method == "POST" and r.json().get("reference", "").startswith("care:")]
    assert stopper not in later
    assert care_recipients(bird)[stopper] == 0
    assert campaign_counts(settings)["suppressed"] == 1


def campaign_counts(settings: Settings) -> dict[str, Any]:
    """The campaign's outbox rows by status, read straight from the database."""
    engine = create_engine(settings.database_url)
    with engine.connect() as c:
        rows = c.execute(t.outbox.select().where(t.outbox.c.campaign_id == THIS_MONTH.campaign_id)).all()
    engine.dispose()
    return dict(Counter(r.status for r in rows))


def test_a_stop_confirmation_during_a_large_run_leaves_within_seconds(settings: Settings, bird: LoopbackBird) -> None:
    seed_members(settings.database_url, member_phones(150))
    app = paced_app(settings, rate=25)
    try:
        trigger(app)
        app.wait_for(lambda: len(care_recipients(bird)) >= 20)
        started = time.monotonic()
        text_in(app, "STOP", "stop-someone-else", phone="+14155550166")
        app.wait_for(lambda: any("unsubscribed" in text for text in bird.texts()), timeout=10)
        waited = time.monotonic() - started
        remaining = 150 - len(care_recipients(bird))
    finally:
        app.stop()
    assert waited < 3
    assert remaining > 50  # the run was far from done when the confirmation overtook it


def test_a_429_with_retry_after_pauses_the_run_and_loses_nothing(app: RunningApp, bird: LoopbackBird,
                                                                  settings: Settings) -> None:
    seed_members(settings.database_url, member_phones(12))
    bird.answer_next(Canned(429, {"error": "slow down"}, {"retry-after": "1"}))
    started = time.monotonic()
    trigger(app)
    app.wait_for(lambda: finished(app), timeout=20)
    assert time.monotonic() - started >= 1
    assert care_recipients(bird) == Counter(member_phones(12))
    messages = app.admin("/api/admin/messages").json()["messages"]
    assert sorted(m["attempts"] for m in messages if m["kind"] == "care") == [1] * 12


def test_a_one_hour_provider_outage_loses_nothing(settings: Settings, bird: LoopbackBird) -> None:
    container = fast_container(settings)
    clock = FixedClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    container.sms_retry.override(providers.Object(RetryPolicy(lifetime=timedelta(hours=24))))
    app = start_app(container)
    bird.down = True
    try:
        for n in range(5):
            text_in(app, "LOVE", f"outage-{n}", phone=f"+1415555013{n}")
        app.wait_for(lambda: attempts(app) == [1] * 5)
        for step in range(2, 14):  # an hour, five minutes at a time, each attempt recorded before time moves on
            clock.advance(300)
            app.wait_for(lambda step=step: attempts(app) == [step] * 5)
        bird.down = False
        clock.advance(300)
        app.wait_for(lambda: {m["status"] for m in app.admin("/api/admin/messages").json()["messages"]} == {"sent"})
        messages = app.admin("/api/admin/messages").json()["messages"]
    finally:
        app.stop()
    assert len(bird.accepted()) == 5
    assert [m["attempts"] for m in messages] == [14] * 5


def attempts(app: RunningApp) -> list[int]:
    return sorted(m["attempts"] for m in app.admin("/api/admin/messages").json()["messages"])


def service_env(settings: Settings, bird: LoopbackBird, rate: float, **extra: str) -> dict[str, str]:
    return {
        "WEFT_DATABASE_URL": settings.database_url, "WEFT_SMS_PROVIDER": "bird", "BIRD_API_URL": bird.url,
        "BIRD_API_KEY": "k", "BIRD_WORKSPACE_ID": "ws-1", "BIRD_CHANNEL_ID": "ch-1",
        "WEFT_SMS_RATE_PER_SECOND": str(rate), "WEFT_QUIET_HOURS": "off", "WEFT_SCHEDULER": "off",
        "WEFT_LEASE_SECONDS": "3", "WEFT_LINK_SECRET": "service-link-secret", **extra,
    }


def wait(condition: Any, timeout: float, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)


def state(service: Service) -> dict[str, Any]:
    return dict(service.get(CAMPAIGN).json()["campaign"])


def test_a_run_killed_mid_way_and_restarted_completes_with_no_double(settings: Settings, bird: LoopbackBird,
                                                                      tmp_path: Path) -> None:
    phones = member_phones(200)
    seed_members(settings.database_url, phones)
    service = Service(service_env(settings, bird, rate=100), tmp_path / "weft.log").start()
    try:
        assert service.post("/api/bird/send-monthly-messages").status_code == 202
        wait(lambda: len(care_recipients(bird)) >= 60, timeout=20, step=0.01)
        service.kill()
        sent_before = len(care_recipients(bird))
        service.start()
        restarted = time.monotonic()
        wait(lambda: state(service)["state"] == "finished", timeout=30)
        took = time.monotonic() - restarted
    finally:
        service.stop()
    assert sent_before < 200
    assert care_recipients(bird) == Counter(phones), "every member exactly once"
    assert any(r.method == "GET" for r in bird.requests), "the claims the dead process held were looked up at Bird"
    assert took < 30


def test_a_reply_burst_killed_mid_way_loses_and_doubles_nothing(settings: Settings, bird: LoopbackBird,
                                                               tmp_path: Path) -> None:
    senders = member_phones(200, first=3_000_000)
    service = Service(service_env(settings, bird, rate=150), tmp_path / "weft.log").start()
    answered: set[int] = set()

    def post_all(first: int) -> None:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            for i in range(first, len(senders), 4):
                try:
                    response = client.post("/bird-sms-webhook", json=_sms_inbound(f"burst-{i}", senders[i], "LOVE"))
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    answered.add(i)

    try:
        threads = [threading.Thread(target=post_all, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        wait(lambda: len(bird.accepted()) >= 40, timeout=20, step=0.01)
        service.kill()
        for thread in threads:
            thread.join()
        service.start()
        for i in sorted(set(range(len(senders))) - answered):  # the provider redelivers what got no 2xx
            assert httpx.post(service.url + "/bird-sms-webhook", json=_sms_inbound(f"burst-{i}", senders[i], "LOVE"),
                              timeout=10).status_code == 200
        wait(lambda: len(bird.accepted()) >= 200, timeout=30)
        time.sleep(0.5)
    finally:
        service.stop()
    assert Counter(bird.recipients()) == Counter(senders), "every LOVE answered exactly once"


def _sms_inbound(message_id: str, sender: str, text: str) -> dict[str, Any]:
    return {"service": "channels", "event": "sms.inbound", "payload": {
        "id": message_id, "channelId": "ch-1", "direction": "incoming", "status": "delivered",
        "sender": {"contact": {"identifierKey": "phonenumber", "identifierValue": sender}},
        "body": {"type": "text", "text": {"text": text}}, "createdAt": "2026-12-01T10:00:00Z"}}


@pytest.mark.postgres
def test_two_instances_on_one_postgres_run_one_campaign(settings: Settings, bird: LoopbackBird,
                                                        tmp_path: Path) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("two instances share a database only on PostgreSQL")
    phones = member_phones(120)
    seed_members(settings.database_url, phones)
    env = service_env(settings, bird, rate=200)
    first = Service(env, tmp_path / "first.log").start()
    second = Service(env, tmp_path / "second.log").start()
    try:
        assert first.post("/api/bird/send-monthly-messages").status_code == 202
        assert second.post("/api/bird/send-monthly-messages").status_code == 202
        wait(lambda: state(first)["state"] == "finished", timeout=30)
        (listed,) = second.get("/api/admin/campaigns").json()["campaigns"]
    finally:
        first.stop()
        second.stop()
    assert care_recipients(bird) == Counter(phones)
    assert (listed["sent"], listed["possible_duplicates"]) == (120, 0)

