from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import attrs

from weft.application.contact_details import email_address, phone_number
from weft.application.fulfilment import fulfil
from weft.application.link_tokens import LinkTokens
from weft.application.ports import CheckoutRequest, Clock, IdGenerator, PaymentGateway
from weft.application.replies import Replies
from weft.application.unit_of_work import Store, Transaction
from weft.domain.errors import PlanExists
from weft.domain.journey import AuditEntry
from weft.domain.membership import live_plan
from weft.domain.payment import Payment, PaymentStatus
from weft.domain.phone import PhoneNumber
from weft.domain.tiers import AmountBounds, PaymentType, TierChoice, choose_tier

IDEMPOTENCY_WINDOW_SECONDS = 600
"""Identical requests in this window (a double click, a reload) open the same checkout session."""


@attrs.frozen
class CheckoutForm:
    """The landing page's request, as received: every field is checked before anything happens."""

    tier: object
    email: object
    phone: object
    amount: object = None
    payment_type: object = None
    token: object = None


@attrs.frozen
class CheckoutSettings:
    public_url: str
    bounds: AmountBounds = AmountBounds()
    default_region: str = "US"
    product_name: str = "Community Weft membership"
    """What the checkout page calls the purchase (the `checkout_product` text)."""


@attrs.frozen
class CheckoutResult:
    """Where the page goes next: the provider's checkout (paid), its customer portal (a second monthly plan), or
    our success page (free)."""

    url: str | None = None
    redirect: str | None = None
    portal: bool = False


@attrs.frozen
class _Applicant:
    choice: TierChoice
    email: str
    phone: PhoneNumber
    token_valid: bool


class StartCheckout:
    """Validate a sign-up; record a free member at once, or open a paid checkout and record it as pending."""

    def __init__(self, store: Store, gateway: PaymentGateway, clock: Clock, ids: IdGenerator, links: LinkTokens,
                 settings: CheckoutSettings, on_journey: Callable[[], None] = lambda: None,
                 replies: Replies | None = None) -> None:
        self._store, self._gateway, self._clock, self._ids = store, gateway, clock, ids
        self._links, self._settings, self._on_journey = links, settings, on_journey
        self._replies = replies or Replies(public_url=settings.public_url)

    async def __call__(self, form: CheckoutForm) -> CheckoutResult:
        applicant = self._validate(form)
        if applicant.choice.is_free:
            return await self._join_free(applicant)
        return await self._open_checkout(applicant)

    def _validate(self, form: CheckoutForm) -> _Applicant:
        choice = choose_tier(form.tier, form.amount, form.payment_type, self._settings.bounds)
        phone = phone_number(form.phone, self._settings.default_region)
        token_valid = isinstance(form.token, str) and self._links.verify(form.token, phone)
        return _Applicant(choice, email_address(form.email), phone, token_valid)

    async def _join_free(self, applicant: _Applicant) -> CheckoutResult:
        now = self._clock.now()
        payment_id = self._free_payment_id(applicant)
        session_id = f"free_{payment_id}"

        def join(tx: Transaction) -> None:
            if tx.payments.get(payment_id) is not None:
                return  # a double submit: the member is already recorded and their journey started
            payment = self._payment(tx, applicant, payment_id, now, session_id, customer_id=None)
            payment.move_to(PaymentStatus.COMPLETED, now)
            tx.payments.save(payment)
            tx.audit.add(_audit("signup.free", payment, now))
            fulfil(tx, payment, now)

        await self._store.transaction(join)
        self._on_journey()
        return CheckoutResult(redirect=f"/success?session_id={session_id}")

    async def _open_checkout(self, applicant: _Applicant) -> CheckoutResult:
        if applicant.choice.payment_type is PaymentType.MONTHLY:
            portal = await self._portal_instead(applicant)
            if portal is not None:
                return CheckoutResult(url=portal, portal=True)
        customer = await self._gateway.find_or_create_customer(applicant.email, applicant.phone.e164)
        session = await self._gateway.create_checkout_session(self._request(applicant, customer.id))
        now = self._clock.now()

        def record(tx: Transaction) -> None:
            if tx.payments.by_session(session.id) is not None:
                return  # a double click: the same session is already recorded
            payment = self._payment(tx, applicant, f"pay_{self._ids()}", now, session.id, customer.id)
            tx.payments.save(payment)
            tx.audit.add(_audit("checkout.opened", payment, now))

        await self._store.transaction(record)
        return CheckoutResult(url=session.url)

    async def _portal_instead(self, applicant: _Applicant) -> str | None:
        """A second monthly plan is never opened: the member who proved the phone with their link goes to the
        provider's portal to change or cancel the plan they have; anyone else is told how to get that link."""
        payments = await self._store.transaction(lambda tx: tx.payments.of_member(applicant.phone, applicant.email))
        plan = live_plan(payments)
        if plan is None:
            return None
        if applicant.token_valid and plan.phone == applicant.phone and plan.customer_id:
            base = self._settings.public_url.rstrip("/")
            return_url = f"{base}/?phone={quote(applicant.phone.e164, safe='')}"
            return await self._gateway.create_portal_session(plan.customer_id, return_url)
        raise PlanExists(self._replies.plain(self._replies.already_monthly))

    def _payment(self, tx: Transaction, applicant: _Applicant, payment_id: str, now: datetime, session_id: str,
                 customer_id: str | None) -> Payment:
        subscriber = tx.members.get(applicant.phone)
        # A number that texted STOP has withdrawn consent, and only a text from it (START, the join word) brings it
        # back: a web sign-up records the membership but proves nothing, even with a link token, which was texted
        # before the STOP (a join word after it would have opted the number back in).
        opted_out = subscriber is not None and subscriber.opted_out
        texted_in = subscriber is not None and subscriber.texted_in
        proven = not opted_out and (applicant.token_valid or texted_in)
        choice = applicant.choice
        return Payment(
            id=payment_id, phone=applicant.phone, email=applicant.email, tier=choice.tier,
            amount_cents=choice.cents, payment_type=choice.payment_type, created_at=now, updated_at=now,
            checkout_session_id=session_id, customer_id=customer_id, phone_proven=proven,
        )

    def _request(self, applicant: _Applicant, customer_id: str) -> CheckoutRequest:
        choice, base = applicant.choice, self._settings.public_url.rstrip("/")
        metadata = {"phone": applicant.phone.e164, "tier": choice.tier,
                    "payment_type": choice.payment_type.value if choice.payment_type else ""}
        return CheckoutRequest(
            customer_id=customer_id, amount_cents=choice.cents, monthly=choice.payment_type is PaymentType.MONTHLY,
            product_name=f"{self._settings.product_name} ({choice.label})",
            success_url=f"{base}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/?phone={quote(applicant.phone.e164, safe='')}", metadata=metadata,
            idempotency_key=self._idempotency_key(customer_id, applicant),
        )

    def _idempotency_key(self, customer_id: str, applicant: _Applicant) -> str:
        # Everything the session's parameters depend on: a corrected phone or email opens a new session.
        choice = applicant.choice
        material = f"{customer_id}|{applicant.phone.e164}|{applicant.email}|{choice.tier}|{choice.cents}|" \
                   f"{choice.payment_type}"
        return "checkout-" + self._digest(material, 40)

    def _free_payment_id(self, applicant: _Applicant) -> str:
        return "pay_free_" + self._digest(f"{applicant.phone.e164}|{applicant.email}", 24)

    def _digest(self, material: str, length: int) -> str:
        """Same material within one idempotency window, same digest."""
        window = int(self._clock.now().timestamp()) // IDEMPOTENCY_WINDOW_SECONDS
        return hashlib.sha256(f"{material}|{window}".encode()).hexdigest()[:length]


def _audit(action: str, payment: Payment, now: datetime) -> AuditEntry:
    return AuditEntry(action, now, payment.phone.e164, payment.id,
                      {"tier": payment.tier, "amount_cents": payment.amount_cents,
                       "payment_type": payment.payment_type.value if payment.payment_type else None,
                       "session_id": payment.checkout_session_id, "phone_proven": payment.phone_proven})
