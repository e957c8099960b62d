from __future__ import annotations

from html import escape

from weft.domain.messages import OutboundEmail
from weft.domain.payment import Payment

SUBJECT = "Welcome to Community Weft"
SMS_FAILED_NOTE = (
    "We tried to text you at {phone}, but the message could not be delivered. "
    "Check the number, or text LOVE to us to connect your phone."
)


def welcome_email(payment: Payment, sms_failed: bool, program: str = "Community Weft") -> OutboundEmail:
    """The welcome email for a completed sign-up, with a note when the welcome text could not be delivered."""
    paragraphs = [
        f"Welcome to {program}! You are now part of our community. We are excited to have you here.",
        f"Your membership: {_tier_text(payment)}.",
        "You will receive monthly care messages from our makers by SMS. Reply STOP to any text to opt out.",
    ]
    if sms_failed:
        paragraphs.append(SMS_FAILED_NOTE.format(phone=payment.phone.e164))
    html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return OutboundEmail(
        id=f"welcome-{payment.id}", to=payment.email, subject=SUBJECT, text="\n\n".join(paragraphs),
        html=f"<!doctype html><html><body>{html}</body></html>",
    )


def _tier_text(payment: Payment) -> str:
    if payment.tier == "free":
        return "Free"
    cadence = "monthly" if payment.is_subscription else "one-time"
    return f"${payment.amount_cents // 100} {cadence}"


def thank_you_email(payment: Payment, subject: str, text: str) -> OutboundEmail:
    """The thank-you email for a member's later gift or plan (the welcome goes once): the text, as written."""
    return OutboundEmail(
        id=f"thanks-{payment.id}", to=payment.email, subject=subject, text=text,
        html=f"<!doctype html><html><body><p>{escape(text)}</p></body></html>",
    )
