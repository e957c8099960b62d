"""One membership per number: the tier follows the plan, a welcome goes once, a second plan is never opened."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from tests.unit.harness import EMAIL, PHONE, PUBLIC_URL, World
from weft.application.fulfilment import welcomed_key
from weft.application.membership_portal import PortalOutcome
from weft.application.replies import Replies
from weft.domain.errors import PlanExists
from weft.domain.journey import Step
from weft.domain.membership import Greeting
from weft.domain.messages import MessageKind
from weft.domain.tiers import PaymentType

PROGRAM = Replies().program_name


@pytest.fixture
def w() -> World:
    return World()


async def buy_again(w: World, tier: str, payment_type: str, **form: object) -> str:
    """Another checkout by the member, paid; returns its session id."""
    before = set(w.gateway.requests)
    await w.sign_up(tier, payment_type=payment_type, token=w.token(), **form)
    (session_id,) = set(w.gateway.requests) - before
    await w.pay(session_id)
    return session_id


def texts(w: World, kind: MessageKind) -> list[str]:
    return [m.text for m in w.sms.sent if m.kind is kind]


async def test_a_one_time_gift_from_a_monthly_member_keeps_their_monthly_tier(w: World) -> None:
    await w.buy("10", "monthly")
    await buy_again(w, "25", "one_time")

    member = w.store.subscriber(PHONE)
    assert (member.paid_tier, member.paid_amount_cents, member.paid_payment_type) == ("10", 1000, PaymentType.MONTHLY)
    assert member.tier.label == "$10 monthly"
    assert member.stripe_subscription_id == w.subscription_id()


async def test_the_second_payment_is_thanked_and_the_welcome_goes_once(w: World) -> None:
    await w.buy("10", "monthly")
    await w.run_journeys()
    await buy_again(w, "25", "one_time")
    await w.run_journeys()

    assert len(texts(w, MessageKind.WELCOME)) == 1
    assert texts(w, MessageKind.THANK_YOU) == [
        f"Thank you for your $25 gift to {PROGRAM}! Your membership stays $10 monthly. Reply STOP to opt out."]
    welcome, thanks = w.email.sent
    assert welcome.subject == "Welcome to Community Weft"
    assert (thanks.subject, thanks.to) == (f"Thank you from {PROGRAM}", EMAIL)
    assert thanks.text == f"Thank you for your $25 gift to {PROGRAM}! Your membership stays $10 monthly."
    assert w.store.state.journeys[f"jny_{thanks.id.removeprefix('thanks-')}"][0].steps[Step.EMAIL_SENT].detail == (
        "thank-you email sent")


async def test_a_free_member_who_starts_a_plan_is_thanked_for_the_plan(w: World) -> None:
    await w.sign_up("free", token=w.token())
    await w.run_journeys()
    await buy_again(w, "5", "monthly")
    await w.run_journeys()

    assert texts(w, MessageKind.THANK_YOU) == [
        f"Thank you! Your {PROGRAM} membership is now $5 monthly. Text MEMBERSHIP to change or cancel it, "
        "STOP to opt out."]


async def test_a_repeat_free_sign_up_is_told_nothing_changes_instead_of_a_second_welcome(w: World) -> None:
    await w.sign_up("free", token=w.token())
    await w.run_journeys()
    await w.sign_up("free", token=w.token(), email="new@example.org")
    await w.run_journeys()

    assert len(texts(w, MessageKind.WELCOME)) == 1
    assert texts(w, MessageKind.THANK_YOU) == [
        f"You are already part of {PROGRAM} (Free), so nothing changes. Thank you for being here! "
        "Reply STOP to opt out."]


async def test_a_number_already_welcomed_in_another_transaction_is_thanked_not_welcomed(w: World) -> None:
    # Two payments settling at once both see no earlier settled payment; the once-only key lets only one welcome.
    await w.store.transaction(lambda tx: tx.events.record(f"welcomed:{PHONE}", w.clock.now()))
    await w.buy("10", "one_time")
    await w.run_journeys()

    assert w.store.journey().greeting is Greeting.THANKS_FOR_GIFT
    assert texts(w, MessageKind.WELCOME) == []


async def test_the_first_sign_up_records_that_the_number_was_welcomed(w: World) -> None:
    await w.sign_up("free", token=w.token())

    assert w.store.journey().greeting is Greeting.WELCOME
    assert welcomed_key(w.store.payment()) in w.store.state.events


async def test_a_second_love_within_ten_minutes_gets_no_second_link(w: World) -> None:
    await w.text("LOVE")
    w.clock.advance(9 * 60)
    await w.text("LOVE")
    await w.deliver()

    assert len(texts(w, MessageKind.JOIN_LINK)) == 1
    w.clock.advance(60)
    await w.text("LOVE")
    await w.deliver()
    assert len(texts(w, MessageKind.JOIN_LINK)) == 2


async def test_a_second_monthly_checkout_with_the_link_goes_to_the_portal_and_bills_nothing(w: World) -> None:
    await w.buy("10", "monthly")
    sessions = dict(w.gateway.requests)

    result = await w.sign_up("25", payment_type="monthly", token=w.token())

    assert result.portal and result.url == "https://billing.test/p/session_1"
    (customer_id,) = w.gateway.customers
    assert w.gateway.portals == [(customer_id, f"{PUBLIC_URL}/?phone=%2B14155550123")]
    assert w.gateway.requests == sessions
    assert len(w.store.state.payments) == 1


async def test_a_second_monthly_checkout_without_the_link_is_refused_with_what_to_do(w: World) -> None:
    await w.buy("10", "monthly")

    with pytest.raises(PlanExists) as refused:
        await w.sign_up("25", payment_type="monthly")

    assert refused.value.field == "payment_type"
    assert "text MEMBERSHIP to us" in str(refused.value)
    assert (w.gateway.portals, len(w.gateway.requests)) == ([], 1)


async def test_a_monthly_checkout_with_the_email_of_a_member_with_a_plan_is_refused(w: World) -> None:
    await w.buy("10", "monthly")

    with pytest.raises(PlanExists):
        await w.sign_up("25", payment_type="monthly", phone="+14155550199", token=w.token("+14155550199"))


async def test_a_one_time_gift_is_always_allowed_to_a_member_with_a_plan(w: World) -> None:
    await w.buy("10", "monthly")

    result = await w.sign_up("25", payment_type="one_time")

    assert not result.portal and result.url is not None and result.url.startswith("https://checkout.test/")


async def test_membership_replies_with_a_short_lived_link_that_opens_the_portal(w: World) -> None:
    await w.buy("10", "monthly")
    await w.text("MEMBERSHIP")
    await w.deliver()

    (reply,) = texts(w, MessageKind.MEMBERSHIP_LINK)
    link = reply.split("here: ")[1].split(" ")[0]
    assert link.startswith(f"{PUBLIC_URL}/membership?phone=%2B14155550123&t=")
    assert "works for 15 minutes" in reply
    query = parse_qs(urlsplit(link).query)
    visit = await w.portal(query["phone"][0], query["t"][0])
    assert (visit.outcome, visit.url) == (PortalOutcome.OPENED, "https://billing.test/p/session_1")
    w.clock.advance(15 * 60 + 1)
    assert (await w.portal(query["phone"][0], query["t"][0])).outcome is PortalOutcome.EXPIRED


async def test_a_join_link_token_does_not_open_the_portal(w: World) -> None:
    await w.buy("10", "monthly")

    assert (await w.portal(PHONE, w.token())).outcome is PortalOutcome.EXPIRED


async def test_membership_from_a_number_without_a_plan_says_so_and_how_to_join(w: World) -> None:
    await w.sign_up("free", token=w.token())
    await w.text("membership")
    await w.deliver()

    assert texts(w, MessageKind.MEMBERSHIP_INFO) == [
        f"{PROGRAM}: this number has no monthly plan with us, so there is nothing to change. "
        "To join or give, text LOVE."]
    assert texts(w, MessageKind.MEMBERSHIP_LINK) == []


async def test_an_opted_out_number_gets_nothing_for_membership(w: World) -> None:
    await w.buy("10", "monthly")
    await w.text("STOP")
    await w.deliver()
    sent = len(w.sms.sent)

    await w.text("MEMBERSHIP")
    await w.deliver()

    assert len(w.sms.sent) == sent
    assert w.sms.sent[-1].kind is MessageKind.OPT_OUT_CONFIRMATION


async def test_the_end_of_the_plan_leaves_a_member_who_also_gave_once_free(w: World) -> None:
    await w.buy("10", "monthly")
    await buy_again(w, "25", "one_time")
    subscription = w.subscription_id()
    w.gateway.subscriptions[subscription] = attrs.evolve(w.gateway.subscriptions[subscription], status="canceled")

    await w.event("customer.subscription.deleted", {"id": subscription})

    member = w.store.subscriber(PHONE)
    assert (member.tier.label, member.stripe_subscription_id) == ("Free", None)
    assert "member.downgraded_to_free" in w.store.actions()
