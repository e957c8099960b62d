from __future__ import annotations

import itertools
from typing import Any

from tests.fakes import FakeEmailSender, FakePaymentGateway, FakeSmsSender, FixedClock, InMemoryStore, SequentialIds
from weft.application.cancel_subscriptions import CancelSubscriptions
from weft.application.deliver_outbox import RetryPolicy
from weft.application.handle_inbound_sms import HandleInboundSms, KeywordSettings
from weft.application.handle_payment_event import EventOutcome, HandlePaymentEvent
from weft.application.link_tokens import LinkTokens
from weft.application.ports import PaymentEvent
from weft.application.replies import Replies
from weft.application.run_journeys import RetryJourney, RunJourneys, SendPolicy
from weft.application.start_checkout import CheckoutForm, CheckoutResult, CheckoutSettings, StartCheckout
from weft.domain.errors import PaymentProviderError
from weft.domain.messages import InboundSms
from weft.domain.phone import PhoneNumber

PHONE = "+14155550123"
EMAIL = "ada@example.org"
PUBLIC_URL = "https://weft.example"
TOKEN_TTL = 3600


class RefusingGateway(FakePaymentGateway):
    """A provider that refuses every cancellation for good (e.g. the subscription belongs to another account)."""

    async def cancel_subscription(self, subscription_id: str) -> None:
        raise PaymentProviderError(f"no such subscription {subscription_id}")


class World:
    """Every use case wired to the same fakes, plus the few moves a member and the provider make."""

    def __init__(self, gateway: FakePaymentGateway | None = None, journey_policy: SendPolicy | None = None) -> None:
        self.store, self.clock, self.ids = InMemoryStore(), FixedClock(), SequentialIds()
        self.gateway = gateway or FakePaymentGateway()
        self.sms, self.email = FakeSmsSender(), FakeEmailSender()
        self.links = LinkTokens("test-secret", TOKEN_TTL, self.clock)
        self.replies = Replies(public_url=PUBLIC_URL)
        self.checkout = StartCheckout(self.store, self.gateway, self.clock, self.ids, self.links,
                                      CheckoutSettings(PUBLIC_URL))
        self.handle_event = HandlePaymentEvent(self.store, self.gateway, self.clock, self.ids, self.replies)
        self.run_journeys = RunJourneys(self.store, self.sms, self.email, self.clock, self.replies,
                                        journey_policy or SendPolicy(attempts=3, delays=(0, 0)), ids=self.ids)
        self.retry_journey = RetryJourney(self.store, self.clock)
        self.inbound = HandleInboundSms(self.store, self.clock, self.ids, self.replies, KeywordSettings(), self.links)
        self.cancel = CancelSubscriptions(self.store, self.gateway, self.clock, RetryPolicy(max_attempts=3,
                                                                                            base_delay=2))
        self._counter = itertools.count(1)

    def token(self, phone: str = PHONE) -> str:
        return self.links.issue(PhoneNumber(phone))

    async def sign_up(self, tier: object = "free", amount: object = None, payment_type: object = None,
                      token: object = None, email: object = EMAIL, phone: object = PHONE) -> CheckoutResult:
        return await self.checkout(CheckoutForm(tier=tier, email=email, phone=phone, amount=amount,
                                                payment_type=payment_type, token=token))

    async def text(self, body: str, phone: str = PHONE) -> None:
        await self.inbound(InboundSms(f"in-{next(self._counter)}", PhoneNumber(phone), body))

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
