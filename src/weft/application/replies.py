from __future__ import annotations

from urllib.parse import quote

import attrs

from weft.domain.phone import PhoneNumber


@attrs.frozen
class Replies:
    """The wording of every automatic SMS reply; each is configurable, these are the defaults."""

    public_url: str = "http://127.0.0.1:8000"
    program_name: str = "The Weft"
    support_contact: str = "support@example.org"
    frequency: str = "1 care message a month"
    join: str = "Thanks for joining {program}! Click here: {link}"
    opt_out: str = (
        "You have been successfully unsubscribed. You will no longer receive messages. Reply {join_word} to rejoin."
    )
    opt_in: str = "You are subscribed to {program} again: {frequency}. Reply HELP for help, STOP to opt out."
    leave_paid: str = (
        "You have been successfully unsubscribed. You are now free tier user. Thank you for being part of {program}!"
    )
    help: str = (
        "{program}: {frequency}. Support: {support}. Msg & data rates may apply. Reply STOP to opt out."
    )
    help_opted_out: str = (
        "{program}: you have opted out and get no messages from us. Support: {support}. "
        "Reply {join_word} or START to rejoin."
    )
    confirmation_request: str = "Reply YES to confirm your Community Weft membership"
    welcome: str = (
        "Welcome to Community Weft! You are now part of our community. We are excited to have you here. "
        "You will receive monthly care messages from our makers. Reply STOP anytime to opt out."
    )
    payment_failed: str = (
        "Your Community Weft payment did not go through. Please update your card to keep your membership. "
        "Reply HELP for help, STOP to opt out."
    )
    thanks_gift: str = (
        "Thank you for your {amount} gift to {program}! Your membership stays {tier}. Reply STOP to opt out."
    )
    thanks_plan: str = (
        "Thank you! Your {program} membership is now {tier}. Text {membership_word} to change or cancel it, "
        "STOP to opt out."
    )
    already_member: str = (
        "You are already part of {program} ({tier}), so nothing changes. Thank you for being here! "
        "Reply STOP to opt out."
    )
    thanks_subject: str = "Thank you from {program}"
    thanks_gift_email: str = "Thank you for your {amount} gift to {program}! Your membership stays {tier}."
    thanks_plan_email: str = (
        "Thank you! Your {program} membership is now {tier}. To change or cancel it, text {membership_word} to us "
        "and open the link we send back."
    )
    already_member_email: str = (
        "You are already part of {program} ({tier}), so nothing changes. Thank you for being here!"
    )
    membership_link: str = (
        "Change or cancel your {program} plan here: {portal_link} (this link works for {minutes} minutes)"
    )
    membership_none: str = (
        "{program}: this number has no monthly plan with us, so there is nothing to change. "
        "To join or give, text {join_word}."
    )
    membership_link_expired: str = (
        "This link has expired or is not valid. Text {membership_word} to us for a new one; it works for "
        "{minutes} minutes."
    )
    membership_unavailable: str = (
        "We could not open your membership page just now. Please try again in a few minutes, or write to "
        "{support}."
    )
    already_monthly: str = (
        "This number or email already has a monthly plan with {program}, so we will not start a second one. "
        "To change or cancel it, text {membership_word} to us and open the link we send back. "
        "A one-time gift is always welcome."
    )
    test_portal: str = (
        "Test mode: this page stands in for Stripe's customer portal. With a Stripe key, {program} sends you to "
        "Stripe here, where you can update your card, switch plan or cancel. Nothing is charged in test mode."
    )
    test_portal_cancelled: str = (
        "Your monthly plan is cancelled and nothing more will be charged. You stay part of {program} as a free "
        "member until you text STOP."
    )
    membership_word: str = "MEMBERSHIP"
    membership_link_minutes: int = 15

    def join_link(self, phone: PhoneNumber, token: str | None = None) -> str:
        link = f"{self.public_url.rstrip('/')}/?phone={quote(phone.e164, safe='')}"
        return f"{link}&t={token}" if token else link

    def membership_page(self, phone: PhoneNumber, token: str) -> str:
        """The short-lived link a MEMBERSHIP reply carries: it leads to the payment provider's portal."""
        return f"{self.public_url.rstrip('/')}/membership?phone={quote(phone.e164, safe='')}&t={token}"

    def render(self, template: str, phone: PhoneNumber, join_word: str = "LOVE", token: str | None = None,
               **extra: str) -> str:
        """The template with its placeholders filled; `extra` adds placeholders of one kind of text ({tier},
        {amount}, {portal_link})."""
        return template.format(
            program=self.program_name,
            link=self.join_link(phone, token),
            join_word=join_word,
            frequency=self.frequency,
            support=self.support_contact,
            membership_word=self.membership_word,
            minutes=self.membership_link_minutes,
            **extra,
        )

    def plain(self, template: str, join_word: str = "LOVE") -> str:
        """A text that names no phone (a page, an error): the program's placeholders filled."""
        return template.format(program=self.program_name, join_word=join_word, support=self.support_contact,
                               membership_word=self.membership_word, minutes=self.membership_link_minutes)
