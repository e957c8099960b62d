"""/metrics over HTTP on the real app: who may read it, and what the counters, histograms and gauges say after
real traffic through the Bird webhook and the loopback Bird."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import RunningApp, fast_container, start_app
from tests.integration.loopback import LoopbackBird
from tests.integration.service import member_phones, seed_members
from tests.integration.test_bird_webhook import applied, text_in
from tests.integration.test_monthly_care import THIS_MONTH, finished, trigger
from weft.config import Settings


def samples(app: RunningApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.admin("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_need_the_admin_token(app: RunningApp) -> None:
    assert app.client.get("/metrics").status_code == 401
    assert app.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.admin("/metrics").status_code == 200


@pytest.fixture
def public_app(settings: Settings) -> Iterator[RunningApp]:
    running = start_app(fast_container(attrs.evolve(settings, metrics_public=True)))
    yield running
    running.stop()


def test_public_metrics_answer_without_a_token(public_app: RunningApp) -> None:
    response = public_app.client.get("/metrics")

    assert response.status_code == 200
    assert "weft_queue_depth" in response.text


def test_texts_in_and_out_are_counted_by_keyword_and_kind_with_their_latencies(
    app: RunningApp, bird: LoopbackBird
) -> None:
    text_in(app, "LOVE", "in-1")
    text_in(app, "hello there", "in-2")
    text_in(app, "STOP", "in-3", phone="+14155550199")  # applied inside the webhook's request
    applied(app)
    app.wait_for(lambda: len(bird.sent()) == 2)
    app.wait_for(lambda: app.message_statuses() == ["sent", "sent"])

    found = samples(app)

    assert found["weft_inbound_texts_total", (("keyword", "join"),)] == 1
    assert found["weft_inbound_texts_total", (("keyword", "none"),)] == 1
    assert found["weft_inbound_texts_total", (("keyword", "opt_out"),)] == 1
    assert found["weft_inbound_texts_total", (("keyword", "help"),)] == 0
    assert found["weft_outbound_texts_total", (("kind", "join_link"), ("state", "sent"))] == 1
    assert found["weft_outbound_texts_total", (("kind", "opt_out_confirmation"), ("state", "sent"))] == 1
    assert found["weft_sms_send_seconds_count", ()] == 2
    assert found["weft_webhook_seconds_count", (("path", "/bird-sms-webhook"),)] == 3
    assert found["weft_webhook_seconds_count", (("path", "/twilio-sms-webhook"),)] == 0
    assert found["weft_queue_depth", (("lane", "priority"),)] == 0
    assert found["weft_alert_active", (("kind", "delivery_rate"),)] == 0


def test_a_care_run_shows_its_progress(app: RunningApp, bird: LoopbackBird, settings: Settings) -> None:
    seed_members(settings.database_url, member_phones(3))
    assert trigger(app).status_code == 202
    app.wait_for(lambda: finished(app), timeout=20)

    found = samples(app)
    labels = (("campaign", THIS_MONTH.campaign_id),)

    assert found["weft_campaign_finished", labels] == 1
    assert found["weft_campaign_selected", labels] == 3
    assert found["weft_campaign_texts", (*labels, ("status", "sent"))] == 3
    assert found["weft_campaign_texts", (*labels, ("status", "pending"))] == 0
    assert found["weft_outbound_texts_total", (("kind", "care"), ("state", "sent"))] == 3
    assert found["weft_queue_depth", (("lane", "broadcast"),)] == 0
