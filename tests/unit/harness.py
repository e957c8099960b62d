from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from tests.fakes import (
    FakeEmailSender,
    FakePaymentGateway,
    FakeSmsSender,
    FixedClock,
    InMemoryStore,
    InMemoryViews,
    SequentialIds,
)
from weft.application.cancel_subscriptions import CancelSubscriptions
from weft.application.deliver_outbox import DeliverOutbox, SendSettings
from weft.application.handle_inbound_sms import (
    ApplyKeywords,
    HandleInboundSms,
    InboundWakeups,
    KeywordSettings,
    ProcessInboundSms,
)
from weft.application.handle_payment_event import EventOutcome, HandlePaymentEvent
from weft.application.link_tokens import LinkTokens
from weft.application.membership_portal import MEMBERSHIP_LINK_SECONDS, OpenMembershipPortal, membership_links
from weft.application.monthly_care import CareSettings, PreviewMonthlyCare, RunCampaigns, StartMonthlyCare
from weft.application.pacing import Pacer
from weft.application.ports import PaymentEvent
from weft.application.process_payment_events import ProcessPaymentEvents
from weft.application.receive_payment_event import ReceivePaymentEvent
from weft.application.replies import Replies
from weft.application.run_journeys import JourneyPolicy, RetryJourney, RunJourneys
from weft.application.start_checkout import CheckoutForm, CheckoutResult, CheckoutSettings, StartCheckout
from weft.application.work_queue import LeaseSettings, QueueWorker, RetryPolicy, StepWorker
from weft.domain.errors import PaymentProviderError
from weft.domain.messages import InboundSms, Lane
from weft.domain.phone import PhoneNumber
from weft.domain.quiet_hours import QuietHours

PHONE = "+14155550123"
EMAIL = "ada@example.org"
PUBLIC_URL = "https://weft.example"
TOKEN_TTL = 3600
CARE_TEXT = "Thank you for being part of Community Weft. This is your monthly care message."


class RefusingGateway(FakePaymentGateway):
    """A provider that refuses every cancellation for good (e.g. the subscription belongs to another account)."""

    async def cancel_subscription(self, subscription_id: str) -> None:
        raise PaymentProviderError(f"no such subscription {subscription_id}")


class World:
    """Every use case wired to the same fakes, plus the few moves a member and the provider make."""

    def __init__(self, gateway: FakePaymentGateway | None = None, journey_policy: JourneyPolicy | None = None,
                 rate: float | None = None, send_settings: SendSettings | None = None,
                 care: CareSettings | None = None, sms_lifetime: timedelta = timedelta(hours=24)) -> None:
        self.store, self.clock, self.ids = InMemoryStore(), FixedClock(), SequentialIds()
        self.views = InMemoryViews(self.store, self.clock)
        self.gateway = gateway or FakePaymentGateway()
        self.sms, self.email = FakeSmsSender(), FakeEmailSender()
        self.links = LinkTokens("test-secret", TOKEN_TTL, self.clock)
        self.replies = Replies(public_url=PUBLIC_URL)
        self.checkout = StartCheckout(self.store, self.gateway, self.clock, self.ids, self.links,
                                      CheckoutSettings(PUBLIC_URL), replies=self.replies)
        self.membership_links = membership_links("test-secret", MEMBERSHIP_LINK_SECONDS, self.clock)
        self.portal = OpenMembershipPortal(self.store, self.gateway, self.membership_links, PUBLIC_URL)
        self.handle_event = HandlePaymentEvent(self.store, self.gateway, self.clock, self.ids, self.replies)
        self.retry_journey = RetryJourney(self.store, self.clock)
        self.receive_event = ReceivePaymentEvent(self.store, self.clock)
        keywords = ApplyKeywords(self.replies, KeywordSettings(), self.links, self.membership_links)
        self.inbound = HandleInboundSms(self.store, self.clock, keywords, InboundWakeups())
        self.inbound_worker = StepWorker("inbound", ProcessInboundSms(self.store, self.clock, keywords,
                                                                      InboundWakeups()))
        self.pacer = Pacer(rate, monotonic=self.clock.monotonic, sleep=self.clock.sleep)
        self.sms_retry = RetryPolicy(base_delay=2, max_delay=300, lifetime=sms_lifetime)
        self.send_settings = send_settings or SendSettings(quiet_hours=QuietHours.none(), consent_poll_seconds=0)
        self.care_settings = care or CareSettings(text=CARE_TEXT, quiet_hours=QuietHours.none(), batch=3)
        self.lease = LeaseSettings("worker-1", seconds=30)
        self.payment_events = self._worker(ProcessPaymentEvents(
            self.handle_event, self.clock, RetryPolicy(base_delay=2, max_delay=300, lifetime=None),
            monotonic=self.clock.monotonic), 4)
        self.outbox = {lane: self._worker(self.deliverer(lane), 8) for lane in Lane}
        self.journeys = self._worker(RunJourneys(self.email, self.store, self.clock, self.replies,
                                                 journey_policy or JourneyPolicy(email_delays=(0, 0))))
        self.cancellations = self._worker(CancelSubscriptions(self.gateway, self.clock, RetryPolicy(
            base_delay=2, max_delay=60, lifetime=timedelta(hours=1))))
        self.campaigns = self._worker(RunCampaigns(self.store, self.views, self.clock, self.care_settings))
        self.start_care = StartMonthlyCare(self.store, self.views, self.clock, self.care_settings)
        self.preview_care = PreviewMonthlyCare(self.views, self.clock, self.care_settings)
        self._counter = itertools.count(1)

    def deliverer(self, lane: Lane) -> DeliverOutbox:
        return DeliverOutbox(lane, self.sms, self.pacer, self.store, self.views, self.clock, self.sms_retry,
                             self.send_settings, monotonic=self.clock.monotonic)

    def _worker(self, work: Any, concurrency: int = 1) -> QueueWorker[Any, Any]:
        return QueueWorker(work, self.store, self.clock, self.lease, concurrency=concurrency)

    async def deliver(self, lane: Lane | None = None) -> int:
        """Send what is due in the outbox (one lane, or both); returns how many messages were handled."""
        lanes = [lane] if lane is not None else list(Lane)
        return sum([await self.outbox[each].drain() for each in lanes])

    async def run_journeys(self) -> int:
        """Run due journeys and the texts they queue until nothing more is due now; returns journeys handled."""
        handled = 0
        while True:
            journeys = await self.journeys.drain()
            handled += journeys
            if not journeys and not await self.deliver():
                return handled

    async def receive(self, event_type: str, obj: dict[str, Any], event_id: str | None = None) -> EventOutcome:
        """A verified webhook arrives: stored for the payment-events worker."""
        return await self.receive_event(PaymentEvent(event_id or f"evt_{next(self._counter)}", event_type, obj))

    async def process_events(self) -> int:
        return await self.payment_events.drain()

    async def cancel(self) -> int:
        return await self.cancellations.drain()

    async def run_campaigns(self) -> int:
        """Select and send due campaigns until nothing more is due now; returns messages handled."""
        sent = 0
        while True:
            selected = await self.campaigns.drain()
            delivered = await self.deliver()
            sent += delivered
            if not selected and not delivered:
                return sent

    def token(self, phone: str = PHONE) -> str:
        return self.links.issue(PhoneNumber(phone))

    async def sign_up(self, tier: object = "free", amount: object = None, payment_type: object = None,
                      token: object = None, email: object = EMAIL, phone: object = PHONE) -> CheckoutResult:
        return await self.checkout(CheckoutForm(tier=tier, email=email, phone=phone, amount=amount,
                                                payment_type=payment_type, token=token))

    async def text(self, body: str, phone: str = PHONE) -> None:
        """The member texts in; the inbound worker then applies it."""
        await self.inbound(InboundSms(f"in-{next(self._counter)}", PhoneNumber(phone), body))
        await self.inbound_worker.drain()

    async def event(self, event_type: str, obj: dict[str, Any], event_id: str | None = None) -> EventOutcome:
        return await self.handle_event(PaymentEvent(event_id or f"evt_{next(self._counter)}", event_type, obj))

    async def pay(self, session_id: str, event_type: str = "checkout.session.completed", paid: bool = True,
                  phone: str | None = PHONE) -> EventOutcome:
        """The member pays at the provider, which then tells us about it."""
        self.gateway.complete(session_id, phone=phone, paid=paid)
        return await self.event(event_type, {"id": session_id})

    async def buy(self, tier: str = "10", payment_type: str = "one_time", proven: bool = True) -> str:
        """Sign up for a paid tier and pay; returns the checkout session id."""
        await self.sign_up(tier, payment_type=payment_type, token=self.token() if proven else None)
        session_id = self.session_id()
        await self.pay(session_id)
        return session_id

    def session_id(self) -> str:
        (session_id,) = self.gateway.requests
        return session_id

    def subscription_id(self) -> str:
        (subscription_id,) = self.gateway.subscriptions
        return subscription_id
