from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from weft.domain.phone import PhoneNumber

COMMON_PLACEHOLDERS = ("program", "support", "frequency", "join_word")
"""What every text may use; a text that needs more names them with `_text(default, extra, ...)`."""


def _setting(default: str) -> Any:
    """A value the texts are filled with (from its own setting), not a text of its own."""
    return attrs.field(default=default, metadata={"setting": True})


def _text(default: str, *extra: str, only: tuple[str, ...] | None = None) -> Any:
    """A text with placeholders beyond the common ones (`extra`), or with exactly `only`."""
    placeholders = only if only is not None else (*COMMON_PLACEHOLDERS, *extra)
    return attrs.field(default=default, metadata={"placeholders": placeholders})


@attrs.frozen
class Replies:
    """Every text a member can receive (SMS, email, the pages' statements): each field that is not a setting is a
    kind of text, overridable by `WEFT_TEMPLATE_<KIND>` or `<kind>.txt` in `WEFT_TEMPLATES_DIR`; these are the
    defaults. A plain new field is a kind with the common placeholders, with no other code."""

    public_url: str = _setting("http://127.0.0.1:8000")
    program_name: str = _setting("Community Weft")
    support_contact: str = _setting("support@example.org")
    join_word: str = _setting("LOVE")
    frequency: str = _text("1 care message a month", only=())
    join: str = _text("Thanks for joining {program}! Click here: {link}", "link")
    opt_out: str = (
        "You have been successfully unsubscribed. You will no longer receive messages. Reply {join_word} to rejoin."
    )
    opt_in: str = "You are subscribed to {program} again: {frequency}. Reply HELP for help, STOP to opt out."
    leave_paid: str = (
        "You have been successfully unsubscribed. You are now a free member. Thank you for being part of {program}!"
    )
    help: str = "{program}: {frequency}. Support: {support}. Msg & data rates may apply. Reply STOP to opt out."
    help_opted_out: str = (
        "{program}: you have opted out and get no messages from us. Support: {support}. "
        "Reply {join_word} or START to rejoin."
    )
    confirmation_request: str = "Reply YES to confirm your {program} membership"
    welcome: str = (
        "Welcome to {program}! You are now part of our community. We are excited to have you here. "
        "You will receive monthly care messages from our makers. Reply STOP anytime to opt out."
    )
    payment_failed: str = (
        "Your {program} payment did not go through. Please update your card to keep your membership. "
        "Reply HELP for help, STOP to opt out."
    )
    monthly_care: str = (
        "Thank you for being part of {program}. This is your monthly care message from our makers. "
        "We appreciate your continued support. Reply STOP to opt out."
    )
    checkout_product: str = "{program} membership"
    welcome_email_subject: str = "Welcome to {program}"
    welcome_email: str = _text(
        "Welcome to {program}! You are now part of our community. We are excited to have you here.\n\n"
        "Your membership: {membership}.\n\n"
        "You will receive monthly care messages from our makers by SMS. Reply STOP to any text to opt out.",
        "membership", "phone")
    welcome_email_sms_failed: str = _text(
        "We tried to text you at {phone}, but the message could not be delivered. "
        "Check the number, or text {join_word} to us to connect your phone.", "phone")
    confirm_email_subject: str = "Confirm your {program} membership by text"
    confirm_email: str = _text(
        "Thank you for joining {program}. Your membership: {membership}.\n\n"
        "We have texted {phone} to check that the number is yours. Reply YES to that text to start getting "
        "{frequency}. Until you do, we will not send you any other texts.\n\n"
        "Not your number? Ignore the text and nothing more is sent to it.", "membership", "phone")
    opted_out_email_subject: str = "Your {program} membership"
    opted_out_email: str = _text(
        "Thank you for joining {program}. Your membership is recorded: {membership}.\n\n"
        "The number {phone} has opted out of our texts, so we will not text you. "
        "To get texts from us again, text START or {join_word} to us.", "membership", "phone")
    page_intro: str = (
        "A small monthly message of care, by text. Join for free, or chip in to keep the threads woven."
    )
    page_what_you_get: str = (
        "Members get {frequency} by text from our makers, and a welcome email. Questions? Contact {support}."
    )
    page_disclosure: str = (
        "By joining you agree to receive up to {frequency} by SMS from {program}. Msg & data rates may apply. "
        "Reply STOP to opt out, HELP for help."
    )
    page_joined_title: str = "Welcome to {program}!"
    page_joined: str = "You're in. Look out for a welcome text. Reply STOP at any time to opt out, HELP for help."
    page_confirm_title: str = "Check your phone"
    page_confirm: str = (
        "We have texted you to check that the number is yours. Reply YES to that text to confirm your membership: "
        "we won't send you anything else until you do."
    )
    page_opted_out_title: str = "Thank you for joining {program}"
    page_opted_out: str = (
        "Your membership is recorded, but this number opted out of our texts, so we won't text you. "
        "To get texts again, text START or {join_word} to us."
    )
    thanks_gift: str = _text(
        "Thank you for your {amount} gift to {program}! Your membership stays {tier}. Reply STOP to opt out.",
        "amount", "tier")
    thanks_plan: str = _text(
        "Thank you! Your {program} membership is now {tier}. Text {membership_word} to change or cancel it, "
        "STOP to opt out.", "tier", "membership_word")
    already_member: str = _text(
        "You are already part of {program} ({tier}), so nothing changes. Thank you for being here! "
        "Reply STOP to opt out.", "tier")
    thanks_subject: str = "Thank you from {program}"
    thanks_gift_email: str = _text(
        "Thank you for your {amount} gift to {program}! Your membership stays {tier}.", "amount", "tier")
    thanks_plan_email: str = _text(
        "Thank you! Your {program} membership is now {tier}. To change or cancel it, text {membership_word} to us "
        "and open the link we send back.", "tier", "membership_word")
    already_member_email: str = _text(
        "You are already part of {program} ({tier}), so nothing changes. Thank you for being here!", "tier")
    membership_link: str = _text(
        "Change or cancel your {program} plan here: {portal_link} (this link works for {minutes} minutes)",
        "portal_link", "minutes")
    membership_none: str = (
        "{program}: this number has no monthly plan with us, so there is nothing to change. "
        "To join or give, text {join_word}."
    )
    membership_link_expired: str = _text(
        "This link has expired or is not valid. Text {membership_word} to us for a new one; it works for "
        "{minutes} minutes.", "membership_word", "minutes")
    membership_unavailable: str = (
        "We could not open your membership page just now. Please try again in a few minutes, or write to "
        "{support}."
    )
    already_monthly: str = _text(
        "This number or email already has a monthly plan with {program}, so we will not start a second one. "
        "To change or cancel it, text {membership_word} to us and open the link we send back. "
        "A one-time gift is always welcome.", "membership_word")
    test_portal: str = (
        "Test mode: this page stands in for Stripe's customer portal. With a Stripe key, {program} sends you to "
        "Stripe here, where you can update your card, switch plan or cancel. Nothing is charged in test mode."
    )
    test_portal_cancelled: str = (
        "Your monthly plan is cancelled and nothing more will be charged. You stay part of {program} as a free "
        "member until you text STOP."
    )
    membership_word: str = _setting("MEMBERSHIP")
    membership_link_minutes: int = attrs.field(default=15, metadata={"setting": True})

    def join_link(self, phone: PhoneNumber, token: str | None = None) -> str:
        link = f"{self.public_url.rstrip('/')}/?phone={quote(phone.e164, safe='')}"
        return f"{link}&t={token}" if token else link

    def membership_page(self, phone: PhoneNumber, token: str) -> str:
        """The short-lived link a MEMBERSHIP reply carries: it leads to the payment provider's portal."""
        return f"{self.public_url.rstrip('/')}/membership?phone={quote(phone.e164, safe='')}&t={token}"

    def render(self, template: str, phone: PhoneNumber, join_word: str | None = None,
               token: str | None = None, **extra: str) -> str:
        """A reply to `phone`: the common values, the number's join link and `extra` (the placeholders of one kind
        of text, such as {tier}, {amount} or {portal_link}) filled in."""
        return template.format_map(self._values(join_word, link=self.join_link(phone, token), phone=phone.e164,
                                                **extra))

    def plain(self, template: str, join_word: str | None = None) -> str:
        """A text that names no phone (a page, an error): the common values filled in."""
        return template.format_map(self._values(join_word))

    def text(self, kind: str, **values: str) -> str:
        """The text of `kind` filled in with the common values and `values`."""
        return str(getattr(self, kind)).format_map(self._values(None, **values))

    def _values(self, join_word: str | None, **values: str) -> dict[str, str]:
        return {"program": self.program_name, "support": self.support_contact, "frequency": self.frequency,
                "join_word": join_word or self.join_word, "membership_word": self.membership_word,
                "minutes": str(self.membership_link_minutes), **values}


def text_kinds(texts: type[Replies] = Replies) -> dict[str, tuple[str, ...]]:
    """Every kind of text, in declaration order, with the placeholders it may use."""
    return {f.name: f.metadata.get("placeholders", COMMON_PLACEHOLDERS)
            for f in attrs.fields(texts) if not f.metadata.get("setting")}


def default_texts() -> dict[str, str]:
    """Every kind's default wording."""
    defaults = Replies()
    return {kind: getattr(defaults, kind) for kind in text_kinds()}


def check_template(kind: str, template: str) -> None:
    """Raise ValueError saying what is wrong when `template` is empty or uses a placeholder `kind` cannot fill."""
    if not template.strip():
        raise ValueError("is empty")
    allowed = text_kinds()[kind]
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}; write {{{{ and }}}} for literal braces)") from None
    for name in names:
        if name not in allowed:
            known = ", ".join(f"{{{p}}}" for p in allowed) or "none"
            raise ValueError(f"uses the unknown placeholder {{{name}}} (this text can use: {known})")


def with_overrides(replies: Replies, overrides: Mapping[str, str]) -> Replies:
    """The texts with some kinds replaced (each already checked by `check_template`)."""
    changes: dict[str, Any] = dict(overrides)
    return attrs.evolve(replies, **changes)
