from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from weft.application.link_tokens import LinkTokens
from weft.application.ports import Clock
from weft.application.replies import Replies
from weft.application.unit_of_work import Cancellation, Store, Transaction
from weft.domain.keywords import DEFAULT_JOIN_WORDS, Keyword, KeywordCommand, parse_keyword
from weft.domain.messages import InboundSms, MessageKind, OutboundSms, outbox_key
from weft.domain.subscriber import Consent, Subscriber

log = logging.getLogger(__name__)


class InboundOutcome(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"


@attrs.frozen
class KeywordSettings:
    join_words: tuple[str, ...] = DEFAULT_JOIN_WORDS
    provider_sends_keyword_replies: bool = False
    """The provider answers STOP/START/HELP itself: change state, but send no reply of ours."""


_PROVIDER_ANSWERED = frozenset({MessageKind.OPT_OUT_CONFIRMATION, MessageKind.OPT_IN_CONFIRMATION, MessageKind.HELP})


class HandleInboundSms:
    """Record an inbound text once, apply its keyword, and queue the reply in the same transaction."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        replies: Replies,
        settings: KeywordSettings,
        links: LinkTokens | None = None,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._links = links
        self._store = store
        self._clock = clock
        self._replies = replies
        self._settings = settings
        self._on_queued = on_queued

    async def __call__(self, message: InboundSms) -> InboundOutcome:
        now = self._clock.now()
        outcome, queued = await self._store.transaction(lambda tx: self._apply(tx, message, now))
        if queued:
            self._on_queued()
        # The access log already has a line per webhook; this one (masked, formatted only when shown) is for debugging.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("inbound sms %s from %s: %s", message.provider_id, message.sender.masked, outcome.value)
        return outcome

    def _apply(self, tx: Transaction, message: InboundSms, now: datetime) -> tuple[InboundOutcome, bool]:
        if not tx.inbound.record(message, now):
            return InboundOutcome.DUPLICATE, False
        subscriber = tx.members.get(message.sender) or Subscriber.first_contact(message.sender, now)
        subscriber.record_inbound(message.text, now)
        command = parse_keyword(message.text, self._settings.join_words)
        kind = self._react(subscriber, command, message, now)
        self._cancel_dropped_subscription(tx, subscriber, command, now)
        tx.members.save(subscriber)
        if kind is None or not self._should_reply(subscriber, kind):
            return InboundOutcome.PROCESSED, False
        return InboundOutcome.PROCESSED, tx.outbox.enqueue_once(self._reply(message, kind, now), now, now)

    def _react(
        self, subscriber: Subscriber, command: KeywordCommand, message: InboundSms, now: datetime
    ) -> MessageKind | None:
        keyword = command.keyword
        if keyword is Keyword.JOIN:
            subscriber.opt_in(now, message.provider_id, reason=f"keyword {command.word}")
            return MessageKind.JOIN_LINK
        if keyword is Keyword.OPT_OUT:
            changed = subscriber.opt_out(now, message.provider_id, reason=f"keyword {command.word}")
            return MessageKind.OPT_OUT_CONFIRMATION if changed else None
        if keyword is Keyword.CONFIRM and subscriber.consent is Consent.PENDING:
            subscriber.opt_in(now, message.provider_id, reason="confirmed web sign-up with YES")
            return MessageKind.WELCOME
        if keyword is Keyword.OPT_IN or (keyword is Keyword.CONFIRM and subscriber.opted_out):
            subscriber.opt_in(now, message.provider_id, reason=f"keyword {command.word}")
            return MessageKind.OPT_IN_CONFIRMATION
        if keyword is Keyword.LEAVE_PAID:
            return MessageKind.DOWNGRADE_CONFIRMATION
        if keyword is Keyword.HELP:
            return MessageKind.HELP
        return None

    @staticmethod
    def _cancel_dropped_subscription(
        tx: Transaction, subscriber: Subscriber, command: KeywordCommand, now: datetime
    ) -> None:
        """STOP and UNSUB end paid membership; the provider subscription is cancelled after commit, with retries."""
        if command.keyword not in (Keyword.OPT_OUT, Keyword.LEAVE_PAID):
            return
        latest = subscriber.leave_paid(now, forget_stripe=command.keyword is Keyword.OPT_OUT)
        # Every subscription that may still bill, not only the latest: a member can have bought twice.
        for subscription in sorted({*tx.payments.live_subscriptions(subscriber.phone), *([latest] if latest else [])}):
            tx.cancellations.request(Cancellation(subscription, subscriber.phone, now, next_attempt_at=now))

    def _should_reply(self, subscriber: Subscriber, kind: MessageKind) -> bool:
        if self._settings.provider_sends_keyword_replies and kind in _PROVIDER_ANSWERED:
            return False
        return subscriber.may_receive(kind)

    def _reply(self, message: InboundSms, kind: MessageKind, now: datetime) -> OutboundSms:
        """The one reply to this inbound text (keyed by its provider id); a join link expires with its link."""
        link_ttl = self._links.ttl_seconds if self._links and kind is MessageKind.JOIN_LINK else None
        return OutboundSms(
            id=outbox_key("reply", message.provider_id),
            to=message.sender,
            text=self._text(kind, message),
            kind=kind,
            conversation_id=message.conversation_id,
            channel_id=message.channel_id,
            expires_at=now + timedelta(seconds=link_ttl) if link_ttl else None,
        )

    def _text(self, kind: MessageKind, message: InboundSms) -> str:
        templates = {
            MessageKind.JOIN_LINK: self._replies.join,
            MessageKind.OPT_OUT_CONFIRMATION: self._replies.opt_out,
            MessageKind.OPT_IN_CONFIRMATION: self._replies.opt_in,
            MessageKind.DOWNGRADE_CONFIRMATION: self._replies.leave_paid,
            MessageKind.HELP: self._replies.help,
            MessageKind.WELCOME: self._replies.welcome,
        }
        token = self._links.issue(message.sender) if self._links and kind is MessageKind.JOIN_LINK else None
        return self._replies.render(templates[kind], message.sender, self._settings.join_words[0], token)
