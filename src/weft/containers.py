from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import httpx
from dependency_injector import containers, providers

from weft.adapters.bird_sms import BirdSmsSender
from weft.adapters.console_email import ConsoleEmailSender
from weft.adapters.console_sms import ConsoleSmsSender
from weft.adapters.resend_email import ResendEmailSender
from weft.adapters.smtp_email import SmtpEmailSender
from weft.adapters.sql_engine import create_engine
from weft.adapters.sql_store import SqlStore
from weft.adapters.stripe_payments import StripePaymentGateway
from weft.adapters.system import SystemClock, new_id
from weft.adapters.test_mode_payments import TestModePaymentGateway
from weft.application.cancel_subscriptions import CancelSubscriptions
from weft.application.deliver_outbox import DeliverOutbox, RetryPolicy
from weft.application.handle_inbound_sms import HandleInboundSms, KeywordSettings
from weft.application.handle_payment_event import HandlePaymentEvent
from weft.application.link_tokens import LinkTokens
from weft.application.replies import Replies
from weft.application.run_journeys import RetryJourney, RunJourneys, SendPolicy
from weft.application.start_checkout import CheckoutSettings, StartCheckout
from weft.config import Settings
from weft.domain.tiers import AmountBounds
from weft.entrypoints.background import BackgroundWorker

log = logging.getLogger(__name__)


def _link_secret(settings: Settings) -> str:
    if settings.link_secret:
        return settings.link_secret
    log.warning("WEFT_LINK_SECRET is not set: sign-up links are signed with a per-process key and stop "
                "proving the phone after a restart")
    return secrets.token_urlsafe(32)


def _smtp(settings: Settings) -> SmtpEmailSender:
    return SmtpEmailSender(
        host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username or None,
        password=settings.smtp_password or None, use_tls=settings.smtp_tls == "tls",
        start_tls=True if settings.smtp_tls == "starttls" else False, sender=settings.email_from,
    )


def _wake_all(*workers: BackgroundWorker) -> Callable[[], None]:
    def wake() -> None:
        for worker in workers:
            worker.wake()

    return wake


class Container(containers.DeclarativeContainer):
    """The only composition root: every adapter is chosen and built here."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Object(new_id)
    engine = providers.Singleton(create_engine, settings.provided.database_url)
    store = providers.Singleton(SqlStore, engine)
    http_client = providers.Singleton(
        httpx.AsyncClient, timeout=httpx.Timeout(10.0, connect=5.0),
        # A small pool: httpcore rescans every connection on each event, so 100 idle ones cost CPU per send.
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
    )

    sms = providers.Selector(
        settings.provided.sms_provider,
        console=providers.Singleton(ConsoleSmsSender),
        bird=providers.Singleton(
            BirdSmsSender,
            client=http_client,
            api_key=settings.provided.bird_api_key,
            workspace_id=settings.provided.bird_workspace_id,
            channel_id=settings.provided.bird_channel_id,
            api_url=settings.provided.bird_api_url,
            access_key_id=settings.provided.bird_access_key_id,
        ),
    )
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
        test_mode=providers.Singleton(TestModePaymentGateway),
        stripe=providers.Singleton(
            StripePaymentGateway, api_key=settings.provided.stripe_secret_key,
            api_base=settings.provided.stripe_api_base,
        ),
    )

    retry_policy = providers.Singleton(RetryPolicy)
    send_policy = providers.Singleton(SendPolicy)
    worker_poll_seconds = providers.Object(1.0)
    replies = providers.Singleton(
        Replies,
        public_url=settings.provided.public_url,
        program_name=settings.provided.program_name,
        support_contact=settings.provided.support_contact,
    )
    link_tokens = providers.Singleton(
        LinkTokens, providers.Callable(_link_secret, settings), settings.provided.link_ttl_seconds, clock
    )

    deliver_outbox = providers.Singleton(DeliverOutbox, store, sms, clock, retry_policy)
    outbox_worker = providers.Singleton(BackgroundWorker, "outbox", deliver_outbox, worker_poll_seconds)
    run_journeys = providers.Singleton(RunJourneys, store, sms, email, clock, replies, send_policy, ids)
    journey_worker = providers.Singleton(BackgroundWorker, "journeys", run_journeys, worker_poll_seconds)
    cancel_subscriptions = providers.Singleton(CancelSubscriptions, store, payment_gateway, clock, retry_policy)
    cancellation_worker = providers.Singleton(
        BackgroundWorker, "cancellations", cancel_subscriptions, worker_poll_seconds
    )

    keyword_settings = providers.Singleton(
        KeywordSettings,
        join_words=settings.provided.join_words,
        provider_sends_keyword_replies=settings.provided.provider_sends_keyword_replies,
    )
    handle_inbound_sms = providers.Singleton(
        HandleInboundSms, store, clock, ids, replies, keyword_settings, links=link_tokens,
        on_queued=providers.Callable(_wake_all, outbox_worker, cancellation_worker),
    )
    checkout_settings = providers.Singleton(
        CheckoutSettings,
        public_url=settings.provided.public_url,
        bounds=providers.Singleton(
            AmountBounds, settings.provided.checkout_min_dollars, settings.provided.checkout_max_dollars
        ),
        default_region=settings.provided.default_region,
    )
    start_checkout = providers.Singleton(
        StartCheckout, store, payment_gateway, clock, ids, link_tokens, checkout_settings,
        on_journey=journey_worker.provided.wake,
    )
    handle_payment_event = providers.Singleton(
        HandlePaymentEvent, store, payment_gateway, clock, ids, replies,
        on_journey=journey_worker.provided.wake, on_queued=outbox_worker.provided.wake,
    )
    retry_journey = providers.Singleton(RetryJourney, store, clock, on_queued=journey_worker.provided.wake)



def background_workers(container: Container) -> list[BackgroundWorker]:
    return [container.outbox_worker(), container.journey_worker(), container.cancellation_worker()]
