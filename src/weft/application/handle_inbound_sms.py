from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from weft.application.link_tokens import LinkTokens
from weft.application.ports import Clock
from weft.application.replies import Replies
from weft.application.unit_of_work import Cancellation, Store, StoreError, Transaction
from weft.domain.keywords import (
    DEFAULT_JOIN_WORDS,
    DEFAULT_MEMBERSHIP_WORDS,
    Keyword,
    KeywordCommand,
    parse_keyword,
)
from weft.domain.membership import live_plan
from weft.domain.messages import InboundSms, MessageKind, OutboundSms, outbox_key
from weft.domain.subscriber import Consent, Subscriber

log = logging.getLogger(__name__)


class InboundOutcome(enum.Enum):
    RECEIVED = "received"
    """Stored: the inbound worker applies it moments later, in the order the texts arrived."""
    PROCESSED = "processed"
    """Applied before the answer (an opt-out)."""
    DUPLICATE = "duplicate"


@attrs.frozen
class KeywordSettings:
    join_words: tuple[str, ...] = DEFAULT_JOIN_WORDS
    membership_words: tuple[str, ...] = DEFAULT_MEMBERSHIP_WORDS
    provider_sends_keyword_replies: bool = False
    """The provider answers STOP/START/HELP itself: change state, but send no reply of ours."""


@attrs.frozen
class Applied:
    """What applying a batch of texts queued, so the caller wakes the right workers after commit."""

    texts: int = 0
    replies: int = 0
    cancellations: int = 0
    keywords: int = 0
    """Texts whose keyword was acted on (a late text older than its number's last consent change is not)."""
    by_keyword: Mapping[Keyword, int] = attrs.field(factory=dict)
    """Every text applied, by the keyword it matched (Keyword.NONE for the rest)."""


_PROVIDER_ANSWERED = frozenset({MessageKind.OPT_OUT_CONFIRMATION, MessageKind.OPT_IN_CONFIRMATION, MessageKind.HELP})


class ApplyKeywords:
    """Apply stored inbound texts inside a transaction: each text's keyword changes its number's consent and
    membership, and its one reply is queued; texts from one number are applied in the order they arrived."""

    def __init__(self, replies: Replies, settings: KeywordSettings, links: LinkTokens | None = None,
                 membership_links: LinkTokens | None = None) -> None:
        self._replies, self._settings, self._links = replies, settings, links
        self._membership_links = membership_links

    def opts_out(self, message: InboundSms) -> bool:
        return self._parse(message).keyword is Keyword.OPT_OUT

    def _parse(self, message: InboundSms) -> KeywordCommand:
        return parse_keyword(message.text, self._settings.join_words, self._settings.membership_words)

    def __call__(self, tx: Transaction, messages: Sequence[InboundSms], now: datetime,
                 late_before: datetime | None = None) -> Applied:
        """Apply the texts; a text received before `late_before` (one the provider sync found late) gets no reply,
        and changes nothing when its number's consent changed after it was sent: the later choice stands."""
        if not messages:
            return Applied()
        members = tx.members.get_many({m.sender for m in messages}, for_update=True)
        replies: list[tuple[OutboundSms, datetime]] = []
        cancellations = keywords = 0
        by_keyword = Counter[Keyword]()
        for message in messages:
            at = message.received_at or now
            subscriber = members.get(message.sender.e164) or Subscriber.first_contact(message.sender, at)
            members[message.sender.e164] = subscriber
            late = late_before is not None and at < late_before
            if late and subscriber.last_message_at is not None and subscriber.last_message_at > at:
                pass  # a newer text is already the number's last message
            else:
                subscriber.record_inbound(message.text, at)
            command = self._parse(message)
            by_keyword[command.keyword] += 1
            if late and subscriber.consent_changed_at is not None and subscriber.consent_changed_at > at:
                continue
            kind = self._react(tx, subscriber, command, message, at)
            keywords += command.keyword is not Keyword.NONE
            cancellations += self._cancel_dropped_subscription(tx, subscriber, command, now)
            if kind is not None and not late and self._should_reply(subscriber, kind):
                replies.append((self._reply(message, kind, now, subscriber.opted_out), now))
        tx.members.save_many(list(members.values()))
        queued = tx.outbox.enqueue_many(replies, now)
        tx.inbound.mark_processed([m.provider_id for m in messages], now)
        return Applied(len(messages), queued, cancellations, keywords, by_keyword)

    def _react(
        self, tx: Transaction, subscriber: Subscriber, command: KeywordCommand, message: InboundSms, at: datetime
    ) -> MessageKind | None:
        keyword = command.keyword
        if keyword is Keyword.JOIN:
            return MessageKind.JOIN_LINK if subscriber.join(at, message.provider_id, command.word) else None
        if keyword is Keyword.MEMBERSHIP:
            if subscriber.opted_out:
                return None  # an opted-out number gets only its confirmation and HELP answers
            plan = live_plan(tx.payments.of_member(subscriber.phone))
            return MessageKind.MEMBERSHIP_LINK if plan is not None else MessageKind.MEMBERSHIP_INFO
        if keyword is Keyword.OPT_OUT:
            changed = subscriber.opt_out(at, message.provider_id, reason=f"keyword {command.word}")
            return MessageKind.OPT_OUT_CONFIRMATION if changed else None
        if keyword is Keyword.CONFIRM and subscriber.consent is Consent.PENDING:
            subscriber.opt_in(at, message.provider_id, reason="confirmed web sign-up with YES")
            return MessageKind.WELCOME
        if keyword is Keyword.OPT_IN or (keyword is Keyword.CONFIRM and subscriber.opted_out):
            subscriber.opt_in(at, message.provider_id, reason=f"keyword {command.word}")
            return MessageKind.OPT_IN_CONFIRMATION
        if keyword is Keyword.LEAVE_PAID:
            return MessageKind.DOWNGRADE_CONFIRMATION
        if keyword is Keyword.HELP:
            return MessageKind.HELP
        return None

    @staticmethod
    def _cancel_dropped_subscription(
        tx: Transaction, subscriber: Subscriber, command: KeywordCommand, now: datetime
    ) -> int:
        """STOP and UNSUB end paid membership; the provider subscription is cancelled after commit, with retries."""
        if command.keyword not in (Keyword.OPT_OUT, Keyword.LEAVE_PAID):
            return 0
        latest = subscriber.leave_paid(now, forget_stripe=command.keyword is Keyword.OPT_OUT)
        # Every subscription that may still bill, not only the latest: a member can have bought twice.
        subscriptions = sorted({*tx.payments.live_subscriptions(subscriber.phone), *([latest] if latest else [])})
        for subscription in subscriptions:
            tx.cancellations.request(Cancellation(subscription, subscriber.phone, now, next_attempt_at=now))
        return len(subscriptions)

    def _should_reply(self, subscriber: Subscriber, kind: MessageKind) -> bool:
        if self._settings.provider_sends_keyword_replies and kind in _PROVIDER_ANSWERED:
            return False
        return subscriber.may_receive(kind)

    def _reply(self, message: InboundSms, kind: MessageKind, now: datetime, opted_out: bool) -> OutboundSms:
        """The one reply to this inbound text (keyed by its provider id); a text with a link expires with it."""
        links = {MessageKind.JOIN_LINK: self._links, MessageKind.MEMBERSHIP_LINK: self._membership_links}.get(kind)
        link_ttl = links.ttl_seconds if links else None
        return OutboundSms(
            id=outbox_key("reply", message.provider_id),
            to=message.sender,
            text=self._text(kind, message, opted_out),
            kind=kind,
            reply_route=message.reply_route,
            expires_at=now + timedelta(seconds=link_ttl) if link_ttl else None,
        )

    def _text(self, kind: MessageKind, message: InboundSms, opted_out: bool) -> str:
        templates = {
            MessageKind.JOIN_LINK: self._replies.join,
            MessageKind.OPT_OUT_CONFIRMATION: self._replies.opt_out,
            MessageKind.OPT_IN_CONFIRMATION: self._replies.opt_in,
            MessageKind.DOWNGRADE_CONFIRMATION: self._replies.leave_paid,
            MessageKind.HELP: self._replies.help_opted_out if opted_out else self._replies.help,
            MessageKind.WELCOME: self._replies.welcome,
            MessageKind.MEMBERSHIP_LINK: self._replies.membership_link,
            MessageKind.MEMBERSHIP_INFO: self._replies.membership_none,
        }
        token = self._links.issue(message.sender) if self._links and kind is MessageKind.JOIN_LINK else None
        portal = ""
        if self._membership_links is not None and kind is MessageKind.MEMBERSHIP_LINK:
            portal = self._replies.membership_page(message.sender, self._membership_links.issue(message.sender))
        return self._replies.render(templates[kind], message.sender, self._settings.join_words[0], token,
                                    portal_link=portal)


@attrs.frozen
class InboundWakeups:
    """Who to wake after a commit: the inbound worker for stored texts, the outbox for replies, and the
    cancellation worker for subscriptions to cancel; `counted` hears how many texts of each keyword were applied."""

    received: Callable[[], None] = lambda: None
    queued: Callable[[], None] = lambda: None
    cancelling: Callable[[], None] = lambda: None
    counted: Callable[[Mapping[Keyword, int]], None] = lambda counts: None

    def after(self, applied: Applied) -> None:
        if applied.by_keyword:
            self.counted(applied.by_keyword)
        if applied.replies:
            self.queued()
        if applied.cancellations:
            self.cancelling()


class HandleInboundSms:
    """Store an inbound text once and answer as soon as it is durable; the inbound worker applies it.

    A text that opts out is applied in the same transaction, after any earlier text from that number still
    waiting, so once the provider has its answer to a STOP nothing else is sent to that number.
    """

    def __init__(self, store: Store, clock: Clock, apply: ApplyKeywords, wakeups: InboundWakeups) -> None:
        self._store, self._clock, self._apply, self._wakeups = store, clock, apply, wakeups

    async def __call__(self, message: InboundSms) -> InboundOutcome:
        now = self._clock.now()
        apply_now = self._apply.opts_out(message)
        try:
            outcome, applied = await self._store.transaction(lambda tx: self._receive(tx, message, now, apply_now))
        except StoreError:
            raise  # nothing was stored: the provider is answered 503 and sends the text again
        except Exception:
            if not apply_now:
                raise
            # Applying failed (a bug): store the text anyway, so the worker retries it or sets it aside.
            log.exception("applying opt-out %s failed; stored for the inbound worker", message.provider_id)
            outcome, applied = await self._store.transaction(lambda tx: self._receive(tx, message, now, False))
        if outcome is InboundOutcome.RECEIVED:
            self._wakeups.received()
        self._wakeups.after(applied)
        # The access log already has a line per webhook; this one (masked, formatted only when shown) is for debugging.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("inbound sms %s from %s: %s", message.provider_id, message.sender.masked, outcome.value)
        return outcome

    def _receive(self, tx: Transaction, message: InboundSms, now: datetime,
                 apply_now: bool) -> tuple[InboundOutcome, Applied]:
        if not tx.inbound.record(message, now):
            return InboundOutcome.DUPLICATE, Applied()
        if not apply_now:
            return InboundOutcome.RECEIVED, Applied()
        tx.inbound.hold([message.sender], wait=True)  # waits while a worker applies this number's earlier texts
        return InboundOutcome.PROCESSED, self._apply(tx, tx.inbound.pending([message.sender]), now)


class ProcessInboundSms:
    """The inbound worker's step: apply the oldest stored texts, a batch per transaction (no provider call, so
    no lease: the batch is read, applied and marked done in one commit).

    It holds each number's applier lock (Inbound.hold) and applies every waiting text of the numbers it holds,
    so with several instances each number's texts still apply once and in order; numbers another instance holds
    wait for the next step. A batch that raises for a reason of its own (not the store's) is retried a text at a
    time, and a text that raises alone is set aside with its error, so one bad text never holds up the rest.
    When the store itself fails, nothing is set aside: the step fails and the worker tries again later.
    """

    def __init__(self, store: Store, clock: Clock, apply: ApplyKeywords, wakeups: InboundWakeups,
                 batch_size: int = 64) -> None:
        self._store, self._clock, self._apply, self._wakeups = store, clock, apply, wakeups
        self._batch_size = batch_size

    async def __call__(self) -> int:
        now = self._clock.now()
        try:
            applied = await self._store.transaction(lambda tx: self._apply_oldest(tx, now))
        except StoreError:
            raise
        except Exception:
            log.exception("applying a batch of inbound texts failed; applying them one at a time")
            handled = 0
            while handled < self._batch_size and (alone := await self._oldest_alone(now)):
                handled += alone
            return handled
        self._wakeups.after(applied)
        return applied.texts

    def _apply_oldest(self, tx: Transaction, now: datetime) -> Applied:
        oldest = tx.inbound.pending(limit=self._batch_size)
        held = tx.inbound.hold(sorted({m.sender for m in oldest}, key=lambda p: p.e164), wait=False)
        # Read again under the locks: another instance may have applied some of them since.
        return self._apply(tx, tx.inbound.pending(held), now) if held else Applied()

    async def _oldest_alone(self, now: datetime) -> int:
        held: list[InboundSms] = []

        def apply_oldest(tx: Transaction) -> Applied:
            oldest = tx.inbound.pending(limit=1)
            if not oldest or not tx.inbound.hold([oldest[0].sender], wait=False):
                return Applied()
            held[:] = tx.inbound.pending([oldest[0].sender], limit=1)
            return self._apply(tx, held, now)

        try:
            applied = await self._store.transaction(apply_oldest)
        except StoreError:
            raise
        except Exception as exc:
            if not held:
                raise
            log.exception("inbound text %s could not be applied; set aside", held[0].provider_id)
            error, key = repr(exc)[:1000], held[0].provider_id
            await self._store.transaction(lambda tx: tx.inbound.mark_processed([key], now, error=error))
            return 1
        self._wakeups.after(applied)
        return applied.texts
