from __future__ import annotations

import httpx
from dependency_injector import containers, providers

from weft.adapters.bird_sms import BirdSmsSender
from weft.adapters.console_sms import ConsoleSmsSender
from weft.adapters.sql_engine import create_engine
from weft.adapters.sql_store import SqlStore
from weft.adapters.system import SystemClock, new_id
from weft.application.deliver_outbox import DeliverOutbox, RetryPolicy
from weft.application.handle_inbound_sms import HandleInboundSms, KeywordSettings
from weft.application.replies import Replies
from weft.config import Settings
from weft.entrypoints.outbox_worker import OutboxWorker


class Container(containers.DeclarativeContainer):
    """The only composition root: every adapter is chosen and built here."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Object(new_id)
    engine = providers.Singleton(create_engine, settings.provided.database_url)
    store = providers.Singleton(SqlStore, engine)
    http_client = providers.Singleton(httpx.AsyncClient, timeout=httpx.Timeout(10.0, connect=5.0))

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

    retry_policy = providers.Singleton(RetryPolicy)
    deliver_outbox = providers.Singleton(DeliverOutbox, store, sms, clock, retry_policy)
    outbox_poll_seconds = providers.Object(1.0)
    outbox_worker = providers.Singleton(OutboxWorker, deliver_outbox, outbox_poll_seconds)

    replies = providers.Singleton(
        Replies,
        public_url=settings.provided.public_url,
        program_name=settings.provided.program_name,
        support_contact=settings.provided.support_contact,
    )
    keyword_settings = providers.Singleton(
        KeywordSettings,
        join_words=settings.provided.join_words,
        provider_sends_keyword_replies=settings.provided.provider_sends_keyword_replies,
    )
    handle_inbound_sms = providers.Singleton(
        HandleInboundSms, store, clock, ids, replies, keyword_settings, on_queued=outbox_worker.provided.wake
    )
