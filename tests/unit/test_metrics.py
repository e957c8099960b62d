"""The Prometheus adapter: the sender wrapper's counts, one registry per container, and the scrape's gauges."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeSmsSender
from weft.adapters.prometheus import Gauges, MeasuredSmsSender, Metrics
from weft.application.unit_of_work import CampaignCounts
from weft.application.views import CampaignSummary
from weft.config import Settings
from weft.containers import Container
from weft.domain.alerts import Alert, AlertKind
from weft.domain.campaign import Campaign, CampaignState
from weft.domain.keywords import Keyword
from weft.domain.messages import DeliveryStatus, Lane, MessageKind, OutboundSms, SendResult
from weft.domain.phone import PhoneNumber

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EMPTY = Gauges(dict.fromkeys(Lane, 0), [], [])


def values(metrics: Metrics, gauges: Gauges = EMPTY) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render(gauges).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sms(kind: MessageKind = MessageKind.CARE) -> OutboundSms:
    return OutboundSms(id="k", to=PhoneNumber("+14155550123"), text="hi", kind=kind)


async def test_the_measured_sender_counts_each_answer_by_kind_and_state_and_times_it() -> None:
    inner, metrics = FakeSmsSender(), Metrics()
    inner.fail_next(SendResult(accepted=False, error="refused"), SendResult(accepted=False, transient=True),
                    SendResult(accepted=False, transient=True, throttled=True, retry_after=1.0))
    sender = MeasuredSmsSender(inner, metrics)
    for _ in range(4):
        await sender.send(sms())

    found = values(metrics)
    assert {state: found["weft_outbound_texts_total", (("kind", "care"), ("state", state))]
            for state in ("sent", "failed", "retry", "throttled", "error")} == {
        "sent": 1, "failed": 1, "retry": 1, "throttled": 1, "error": 0}
    assert found["weft_sms_send_seconds_count", ()] == 4


async def test_a_sender_that_raises_is_counted_as_an_error_and_the_error_goes_on() -> None:
    class Raising(FakeSmsSender):
        async def send(self, message: OutboundSms) -> SendResult:
            raise RuntimeError("bug")

    metrics = Metrics()
    try:
        await MeasuredSmsSender(Raising(), metrics).send(sms(MessageKind.HELP))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the sender's error was swallowed")
    assert values(metrics)["weft_outbound_texts_total", (("kind", "help"), ("state", "error"))] == 1


def test_two_containers_keep_their_own_counts() -> None:
    first, second = Container(settings=Settings()), Container(settings=Settings())
    first.metrics().keywords_applied({Keyword.OPT_OUT: 2})

    assert values(first.metrics())["weft_inbound_texts_total", (("keyword", "opt_out"),)] == 2
    assert values(second.metrics())["weft_inbound_texts_total", (("keyword", "opt_out"),)] == 0


def test_the_scrape_shows_queue_depth_campaign_progress_and_alerts() -> None:
    campaign = Campaign(id="care-2026-12", month="2026-12", text="care", created_at=NOW,
                        state=CampaignState.SENDING, selected=10)
    counts = CampaignCounts({DeliveryStatus.SENT: 6, DeliveryStatus.PENDING: 4}, sent_last_minute=120)
    alert = Alert(AlertKind.CAMPAIGN_STALLED, active=True, summary="stalled", since=NOW)
    gauges = Gauges({Lane.PRIORITY: 2, Lane.BROADCAST: 4}, [CampaignSummary(campaign, counts)], [alert])

    found = values(Metrics(), gauges)

    assert found["weft_queue_depth", (("lane", "broadcast"),)] == 4
    assert found["weft_queue_depth", (("lane", "priority"),)] == 2
    labels = (("campaign", "care-2026-12"),)
    assert found["weft_campaign_texts", (*labels, ("status", "pending"))] == 4
    assert found["weft_campaign_texts", (*labels, ("status", "failed"))] == 0
    assert (found["weft_campaign_selected", labels], found["weft_campaign_rate_per_second", labels],
            found["weft_campaign_finished", labels]) == (10, 2.0, 0)
    assert found["weft_alert_active", (("kind", "campaign_stalled"),)] == 1
    assert found["weft_alert_active", (("kind", "delivery_rate"),)] == 0
