"""Weft's Prometheus metrics (prometheus-client): the counters and histograms the process updates as it works,
and the gauges read from the database when /metrics is scraped.

When `weft serve` runs the background work in a `weft worker` child, both processes keep their counters in files
in one directory (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`), so the web process's
/metrics counts the sends and inbound texts its worker handled too, across worker restarts."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from weft.application.ports import SmsSender
from weft.application.views import CampaignSummary
from weft.domain.alerts import Alert, AlertKind
from weft.domain.keywords import Keyword
from weft.domain.messages import DeliveryStatus, Lane, LookupResult, MessageKind, OutboundSms, SendResult

WEBHOOK_PATHS = ("/bird-sms-webhook", "/twilio-sms-webhook", "/twilio-status", "/api/stripe/webhook")
SEND_STATES = ("sent", "failed", "retry", "throttled", "error")
"""The provider took it; refused it for good; a transient fault (retried); asked us to slow down; the sender raised."""
SHARED_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own variable: where every process that shares it keeps its counts."""


@contextlib.contextmanager
def counted_with_children() -> Iterator[str]:
    """Count this process's metrics, and those of the child processes it starts meanwhile (they inherit the
    variable), in one directory: PROMETHEUS_MULTIPROC_DIR when it is set, else a new temporary one, removed after.
    Enter it before the first Metrics is made."""
    configured = os.environ.get(SHARED_DIRECTORY)
    if configured:
        os.makedirs(configured, exist_ok=True)
        _count_in(configured)
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="weft-metrics-") as directory:
        _count_in(directory)
        try:
            yield directory
        finally:
            os.environ.pop(SHARED_DIRECTORY, None)


def _count_in(directory: str) -> None:
    os.environ[SHARED_DIRECTORY] = directory
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus-client picks its value class when imported, from this variable; set after the import, the
        # choice is made again here (once: a second file-backed class would open the same files twice).
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class Metrics:
    """The process's own metrics, on a registry of their own (one per container, so tests and several apps in one
    process never add to each other's counts). Label values are bounded: enums and fixed paths only. With
    PROMETHEUS_MULTIPROC_DIR set (see counted_with_children), they are exposed summed over every process that
    counts in that directory."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed = self.registry
        if shared := os.environ.get(SHARED_DIRECTORY):
            _count_in(shared)
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, path=shared)  # type: ignore[no-untyped-call]
        self.inbound = Counter("weft_inbound_texts", "Inbound texts applied, by the keyword they matched (none: no "
                               "keyword)", ["keyword"], registry=self.registry)
        self.outbound = Counter("weft_outbound_texts", "Texts handed to the SMS provider, by message kind and what "
                                "the provider answered", ["kind", "state"], registry=self.registry)
        self.send_seconds = Histogram("weft_sms_send_seconds", "Seconds the SMS provider took to answer one send",
                                      registry=self.registry)
        self.webhook_seconds = Histogram("weft_webhook_seconds", "Seconds to answer one provider webhook, by path",
                                         ["path"], registry=self.registry)
        # Children made once: the hot paths never build a label tuple.
        self._outbound = {(k, s): self.outbound.labels(k.value, s) for k in MessageKind for s in SEND_STATES}
        self._inbound = {k: self.inbound.labels(k.value) for k in Keyword}
        self.webhook_timers = {path: self.webhook_seconds.labels(path) for path in WEBHOOK_PATHS}

    def keywords_applied(self, counts: Mapping[Keyword, int]) -> None:
        """Count inbound texts applied (after their commit), by keyword."""
        for keyword, count in counts.items():
            self._inbound[keyword].inc(count)

    def sent(self, kind: MessageKind, state: str, seconds: float) -> None:
        self._outbound[kind, state].inc()
        self.send_seconds.observe(seconds)

    def render(self, gauges: Gauges) -> bytes:
        """The text exposition: the counters and histograms, then the gauges read for this scrape."""
        return generate_latest(self._exposed) + generate_latest(gauges)


class MeasuredSmsSender:
    """An SmsSender that times each send and counts what the provider answered; lookups pass straight through."""

    def __init__(self, sender: SmsSender, metrics: Metrics) -> None:
        self._sender, self._metrics = sender, metrics

    async def send(self, message: OutboundSms) -> SendResult:
        started = time.perf_counter()
        try:
            result = await self._sender.send(message)
        except BaseException:
            self._metrics.sent(message.kind, "error", time.perf_counter() - started)
            raise
        self._metrics.sent(message.kind, _state(result), time.perf_counter() - started)
        return result

    async def lookup(self, message: OutboundSms) -> LookupResult:
        return await self._sender.lookup(message)


def _state(result: SendResult) -> str:
    if result.accepted:
        return "sent"
    if result.throttled:
        return "throttled"
    return "retry" if result.transient else "failed"


@attrs.frozen
class Gauges:
    """What the database says now, read once per scrape: the outbox per lane, the newest care runs, the alerts."""

    queue_depth: Mapping[Lane, int]
    campaigns: list[CampaignSummary]
    alerts: list[Alert]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("weft_queue_depth", "Texts waiting in the outbox, by lane", labels=["lane"])
        for lane, count in self.queue_depth.items():
            depth.add_metric([lane.name.lower()], count)
        yield depth
        yield from self._campaigns()
        active = {a.kind for a in self.alerts}
        alerts = GaugeMetricFamily("weft_alert_active", "1 while an alert of this kind is active", labels=["kind"])
        for kind in AlertKind:
            alerts.add_metric([kind.value], 1 if kind in active else 0)
        yield alerts

    def _campaigns(self) -> Iterator[GaugeMetricFamily]:
        texts = GaugeMetricFamily("weft_campaign_texts", "A care message run's texts, by where they stand",
                                  labels=["campaign", "status"])
        selected = GaugeMetricFamily("weft_campaign_selected", "Members a care message run has selected in its "
                                     "current pass", labels=["campaign"])
        rate = GaugeMetricFamily("weft_campaign_rate_per_second", "Texts a care message run sent a second, over the "
                                 "last minute", labels=["campaign"])
        finished = GaugeMetricFamily("weft_campaign_finished", "1 once nothing of the run is pending",
                                     labels=["campaign"])
        for summary in self.campaigns:
            cid = summary.campaign.id
            for status in DeliveryStatus:
                texts.add_metric([cid, status.value], summary.counts[status])
            selected.add_metric([cid], summary.campaign.selected)
            rate.add_metric([cid], summary.rate_per_second)
            finished.add_metric([cid], 1 if summary.campaign.finished_at is not None else 0)
        yield from (texts, selected, rate, finished)
