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

    def join_link(self, phone: PhoneNumber, token: str | None = None) -> str:
        link = f"{self.public_url.rstrip('/')}/?phone={quote(phone.e164, safe='')}"
        return f"{link}&t={token}" if token else link

    def render(self, template: str, phone: PhoneNumber, join_word: str = "LOVE", token: str | None = None) -> str:
        return template.format(
            program=self.program_name,
            link=self.join_link(phone, token),
            join_word=join_word,
            frequency=self.frequency,
            support=self.support_contact,
        )
