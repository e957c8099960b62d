from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import httpx
from dependency_injector import containers, providers
from httpx_aiohttp import AiohttpTransport

from weft.adapters.airtable.base import AirtableBase
from weft.adapters.bird.history import BirdMessageHistory
from weft.adapters.bird.sender import BirdSmsSender
from weft.adapters.console_email import ConsoleEmailSender
from weft.adapters.console_sms import ConsoleSmsSender
from weft.adapters.prometheus import MeasuredSmsSender, Metrics
from weft.adapters.resend_email import ResendEmailSender
from weft.adapters.smtp_email import SmtpEmailSender
from weft.adapters.sql.dashboard import SqlDashboard
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.unit_of_work import SqlStore
from weft.adapters.sql.views import SqlViews
from weft.adapters.stripe_payments import StripePaymentGateway
from weft.adapters.system import SystemClock, new_id
from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.adapters.twilio.sender import TwilioSmsSender
from weft.application.alerts import AlertSettings, CheckAlerts
from weft.application.cancel_subscriptions import CancelSubscriptions
from weft.application.deliver_outbox import DeliverOutbox, SendSettings
from weft.application.delivery_receipts import RecordDeliveryReceipts
from weft.application.handle_inbound_sms import (
    ApplyKeywords,
    HandleInboundSms,
    InboundWakeups,
    KeywordSettings,
    ProcessInboundSms,
)
from weft.application.handle_payment_event import HandlePaymentEvent
from weft.application.import_base import ImportFromBase
from weft.application.link_tokens import LinkTokens
from weft.application.membership_portal import MEMBERSHIP_LINK_SECONDS, OpenMembershipPortal, membership_links
from weft.application.mirror import REJECTED_DELAY_SECONDS, PushToMirror
from weft.application.monthly_care import CareSettings, PreviewMonthlyCare, RunCampaigns, StartMonthlyCare
from weft.application.pacing import Foreground, Pacer, RateLimit
from weft.application.process_payment_events import ProcessPaymentEvents
from weft.application.receive_payment_event import ReceivePaymentEvent
from weft.application.replies import Replies, with_overrides
from weft.application.run_journeys import JourneyPolicy, RetryJourney, RunJourneys
from weft.application.start_checkout import CheckoutSettings, StartCheckout
from weft.application.sync_messages import SyncProviderMessages, SyncSettings
from weft.application.work_queue import BackgroundLoop, LeaseSettings, QueueWorker, RetryPolicy, StepWorker, Wakeups
from weft.config import Settings, quiet_hours
from weft.domain.messages import Lane
from weft.domain.tiers import AmountBounds
from weft.entrypoints.http.admin_auth import AdminSessions, SignInThrottle

log = logging.getLogger(__name__)

MIRROR_POLL_SECONDS = 2.0
"""Copies are queued inside the stores' own transactions, so nothing wakes the mirror worker: it looks this often."""


def _link_secret(settings: Settings) -> str:
    if settings.link_secret:
        return settings.link_secret
    # Only without migrations (bootstrap keeps a generated secret in the database otherwise).
    log.warning("WEFT_LINK_SECRET is not set: sign-up links are signed with a per-process key")
    return secrets.token_urlsafe(32)


def _smtp(settings: Settings) -> SmtpEmailSender:
    return SmtpEmailSender(
        host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username or None,
        password=settings.smtp_password or None, use_tls=settings.smtp_tls == "tls",
        start_tls=True if settings.smtp_tls == "starttls" else False, sender=settings.email_from,
    )


def _sms_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(lifetime=timedelta(hours=settings.send_retry_hours))


def _send_settings(settings: Settings) -> SendSettings:
    return SendSettings(quiet_hours=quiet_hours(settings), time_zone=settings.time_zone,
                        daily_cap=settings.sms_daily_cap)


def _sync_settings(settings: Settings) -> SyncSettings:
    return SyncSettings(name="bird", reply_window=timedelta(seconds=settings.sync_reply_window_seconds))


def _alert_settings(settings: Settings, sms_retry: RetryPolicy) -> AlertSettings:
    return AlertSettings(email=settings.alert_email, min_success_rate=settings.alert_min_success_rate,
                         min_messages=settings.alert_min_messages, stall_minutes=settings.alert_stall_minutes,
                         daily_cap=settings.sms_daily_cap, time_zone=settings.time_zone,
                         retry_horizon=timedelta(seconds=sms_retry.max_delay))



def _replies(settings: Settings) -> Replies:
    replies = Replies(public_url=settings.public_url, program_name=settings.program_name,
                      support_contact=settings.support_contact, join_word=settings.join_words[0],
                      membership_word=settings.membership_words[0],
                      membership_link_minutes=MEMBERSHIP_LINK_SECONDS // 60)
    return with_overrides(replies, settings.templates)


def _care_settings(settings: Settings, replies: Replies) -> CareSettings:
    return CareSettings(text=replies.text("monthly_care"), quiet_hours=quiet_hours(settings),
                        time_zone=settings.time_zone)


class Container(containers.DeclarativeContainer):
    """The only composition root: every adapter is chosen and built here."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Object(new_id)
    engine = providers.Singleton(create_engine, settings.provided.database_url)
    store = providers.Singleton(SqlStore, engine, mirror=settings.provided.airtable_configured)
    # httpx's API on aiohttp's connection pool: httpx's own transport (httpcore on anyio) costs about 0.5 ms of CPU
    # per request, which alone would cap a monthly run well below 1,500 texts a second.
    http_transport = providers.Singleton(
        AiohttpTransport, limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
    http_client = providers.Singleton(httpx.AsyncClient, timeout=httpx.Timeout(10.0, connect=5.0),
                                      transport=http_transport)

    sms = providers.Selector(
        settings.provided.sms_provider,
        console=providers.Singleton(ConsoleSmsSender),
        bird=providers.Singleton(
            BirdSmsSender,
            client=http_client,
            transport=http_transport,
            api_key=settings.provided.bird_api_key,
            workspace_id=settings.provided.bird_workspace_id,
            channel_id=settings.provided.bird_channel_id,
            api_url=settings.provided.bird_api_url,
            access_key_id=settings.provided.bird_access_key_id,
        ),
        twilio=providers.Singleton(
            TwilioSmsSender,
            client=http_client,
            account_sid=settings.provided.twilio_account_sid,
            auth_token=settings.provided.twilio_auth_token,
            messaging_service_sid=settings.provided.twilio_messaging_service_sid,
            from_number=settings.provided.twilio_from_number,
            status_callback=providers.Callable(lambda s: f"{s.public_url.rstrip('/')}/twilio-status", settings),
            api_url=settings.provided.twilio_api_url,
        ),
    )
    metrics = providers.Singleton(Metrics)
    measured_sms = providers.Singleton(MeasuredSmsSender, sms, metrics)
    email = providers.Selector(
        settings.provided.email_provider,
        console=providers.Singleton(ConsoleEmailSender),
        smtp=providers.Singleton(_smtp, settings),
        resend=providers.Singleton(
            ResendEmailSender, client=http_client, api_key=settings.provided.resend_api_key,
            sender=settings.provided.email_from, api_url=settings.provided.resend_api_url,
        ),
    )
    payment_gateway = providers.Selector(
        settings.provided.payment_provider,
        test_mode=providers.Singleton(TestModePaymentGateway, engine),
        stripe=providers.Singleton(
            StripePaymentGateway, api_key=settings.provided.stripe_secret_key,
            api_base=settings.provided.stripe_api_base,
            limit=providers.Singleton(RateLimit, settings.provided.stripe_max_requests_per_second),
        ),
    )

    views = providers.Singleton(SqlViews, engine, clock)
    admin_sessions = providers.Singleton(AdminSessions, settings.provided.admin_tokens,
                                         settings.provided.admin_session_hours)
    sign_in_throttle = providers.Singleton(SignInThrottle)
    dashboard = providers.Singleton(SqlDashboard, engine)
    wakeups = providers.Singleton(Wakeups)
    worker_poll_seconds = providers.Object(1.0)
    foreground = providers.Singleton(Foreground)
    lease_settings = providers.Singleton(LeaseSettings, owner=providers.Callable(new_id),
                                         seconds=settings.provided.lease_seconds)
    replies = providers.Singleton(_replies, settings)
    link_secret = providers.Singleton(_link_secret, settings)
    link_tokens = providers.Singleton(LinkTokens, link_secret, settings.provided.link_ttl_seconds, clock)
    membership_tokens = providers.Singleton(membership_links, link_secret, MEMBERSHIP_LINK_SECONDS, clock)

    pacer = providers.Singleton(Pacer, settings.provided.sms_rate_per_second)
    sms_retry = providers.Singleton(_sms_retry, settings)
    send_settings = providers.Singleton(_send_settings, settings)
    deliver_priority = providers.Singleton(
        DeliverOutbox, Lane.PRIORITY, measured_sms, pacer, store, views, clock, sms_retry, send_settings,
        on_journey=wakeups.provided.caller.call("journeys"),
    )
    deliver_broadcast = providers.Singleton(
        DeliverOutbox, Lane.BROADCAST, measured_sms, pacer, store, views, clock, sms_retry, send_settings,
    )
    send_concurrency = providers.Object(8)
    priority_worker = providers.Singleton(QueueWorker, deliver_priority, store, clock, lease_settings,
                                          send_concurrency, worker_poll_seconds, foreground=foreground)
    broadcast_worker = providers.Singleton(QueueWorker, deliver_broadcast, store, clock, lease_settings,
                                           send_concurrency, worker_poll_seconds, foreground=foreground)

    journey_policy = providers.Singleton(JourneyPolicy)
    run_journeys = providers.Singleton(RunJourneys, email, store, clock, replies, journey_policy,
                                       on_queued=wakeups.provided.caller.call("outbox-priority"))
    journey_worker = providers.Singleton(QueueWorker, run_journeys, store, clock, lease_settings, 1,
                                         worker_poll_seconds, foreground=foreground)
    cancellation_retry = providers.Singleton(RetryPolicy, lifetime=timedelta(days=7))
    cancel_subscriptions = providers.Singleton(CancelSubscriptions, payment_gateway, clock, cancellation_retry)
    cancellation_worker = providers.Singleton(QueueWorker, cancel_subscriptions, store, clock, lease_settings, 1,
                                              worker_poll_seconds, foreground=foreground)

    care_settings = providers.Singleton(_care_settings, settings, replies)
    run_campaigns = providers.Singleton(RunCampaigns, store, views, clock, care_settings,
                                        on_queued=wakeups.provided.caller.call("outbox-broadcast"))
    campaign_worker = providers.Singleton(QueueWorker, run_campaigns, store, clock, lease_settings, 1,
                                          worker_poll_seconds, foreground=foreground)
    start_monthly_care = providers.Singleton(StartMonthlyCare, store, views, clock, care_settings,
                                             on_started=wakeups.provided.caller.call("campaigns"))
    preview_monthly_care = providers.Singleton(PreviewMonthlyCare, views, clock, care_settings)

    keyword_settings = providers.Singleton(
        KeywordSettings,
        join_words=settings.provided.join_words,
        membership_words=settings.provided.membership_words,
        provider_sends_keyword_replies=settings.provided.provider_sends_keyword_replies,
    )
    apply_keywords = providers.Singleton(ApplyKeywords, replies, keyword_settings, links=link_tokens,
                                         membership_links=membership_tokens)
    inbound_wakeups = providers.Singleton(
        InboundWakeups,
        received=wakeups.provided.caller.call("inbound"),
        queued=wakeups.provided.caller.call("outbox-priority"),
        cancelling=wakeups.provided.caller.call("cancellations"),
        counted=metrics.provided.keywords_applied,
    )
    handle_inbound_sms = providers.Singleton(HandleInboundSms, store, clock, apply_keywords, inbound_wakeups)
    record_delivery_receipts = providers.Singleton(RecordDeliveryReceipts, store, clock)
    bird_history = providers.Singleton(
        BirdMessageHistory, http_client, api_key=settings.provided.bird_api_key,
        workspace_id=settings.provided.bird_workspace_id, channel_id=settings.provided.bird_channel_id,
        api_url=settings.provided.bird_api_url, default_region=settings.provided.default_region,
    )
    sync_bird = providers.Singleton(SyncProviderMessages, bird_history, store, clock, apply_keywords, inbound_wakeups,
                                    lease_settings, providers.Callable(_sync_settings, settings))
    process_inbound_sms = providers.Singleton(ProcessInboundSms, store, clock, apply_keywords, inbound_wakeups)
    inbound_worker = providers.Singleton(StepWorker, "inbound", process_inbound_sms, worker_poll_seconds,
                                         foreground=foreground)
    checkout_settings = providers.Singleton(
        CheckoutSettings,
        public_url=settings.provided.public_url,
        bounds=providers.Singleton(
            AmountBounds, settings.provided.checkout_min_dollars, settings.provided.checkout_max_dollars
        ),
        default_region=settings.provided.default_region,
        product_name=replies.provided.text.call("checkout_product"),
    )
    start_checkout = providers.Singleton(
        StartCheckout, store, payment_gateway, clock, ids, link_tokens, checkout_settings,
        on_journey=wakeups.provided.caller.call("journeys"), replies=replies,
    )
    open_membership_portal = providers.Singleton(
        OpenMembershipPortal, store, payment_gateway, membership_tokens, settings.provided.public_url,
        settings.provided.default_region,
    )
    handle_payment_event = providers.Singleton(
        HandlePaymentEvent, store, payment_gateway, clock, ids, replies,
        on_journey=wakeups.provided.caller.call("journeys"), on_queued=wakeups.provided.caller.call("outbox-priority"),
    )
    receive_payment_event = providers.Singleton(ReceivePaymentEvent, store, clock,
                                                on_received=wakeups.provided.caller.call("payment-events"))
    payment_event_retry = providers.Singleton(RetryPolicy, lifetime=None)
    process_payment_events = providers.Singleton(ProcessPaymentEvents, handle_payment_event, clock,
                                                 payment_event_retry)
    payment_event_worker = providers.Singleton(QueueWorker, process_payment_events, store, clock, lease_settings,
                                               4, worker_poll_seconds, foreground=foreground)
    retry_journey = providers.Singleton(RetryJourney, store, clock,
                                        on_queued=wakeups.provided.caller.call("journeys", "outbox-priority"))

    organiser_base = providers.Singleton(
        AirtableBase, api_key=settings.provided.airtable_api_key, base_id=settings.provided.airtable_base_id,
        numbers_table=settings.provided.airtable_phone_numbers_table,
        payments_table=settings.provided.airtable_payments_table,
        limit=providers.Singleton(RateLimit, settings.provided.airtable_requests_per_second),
        api_url=settings.provided.airtable_api_url,
    )
    mirror_retry = providers.Singleton(RetryPolicy, base_delay=5.0, max_delay=300.0, lifetime=None)
    mirror_rejected_delay = providers.Object(REJECTED_DELAY_SECONDS)
    push_to_mirror = providers.Singleton(PushToMirror, organiser_base, clock, mirror_retry,
                                         rejected_delay=mirror_rejected_delay)
    mirror_poll_seconds = providers.Object(MIRROR_POLL_SECONDS)
    mirror_worker = providers.Singleton(QueueWorker, push_to_mirror, store, clock, lease_settings, 1,
                                        mirror_poll_seconds, foreground=foreground)
    import_from_base = providers.Singleton(ImportFromBase, organiser_base, store, clock, settings.provided.join_words)

    alert_settings = providers.Singleton(_alert_settings, settings, sms_retry)
    check_alerts = providers.Singleton(CheckAlerts, views, email, clock, alert_settings, store)



def background_workers(container: Container) -> list[BackgroundLoop]:
    """Every background worker, most urgent first; each registered under its wake-up names."""
    workers: list[BackgroundLoop] = [
        container.inbound_worker(), container.priority_worker(), container.broadcast_worker(),
        container.payment_event_worker(), container.journey_worker(), container.cancellation_worker(),
        container.campaign_worker(),
    ]
    if container.settings().airtable_configured:
        workers.append(container.mirror_worker())
    return workers
