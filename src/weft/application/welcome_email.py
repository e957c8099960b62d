from __future__ import annotations

from html import escape

from weft.application.replies import Replies
from weft.application.sign_up_outcome import SignUpOutcome
from weft.domain.membership import Tier
from weft.domain.messages import OutboundEmail
from weft.domain.payment import Payment

_KINDS = {
    SignUpOutcome.JOINED: ("welcome_email_subject", "welcome_email"),
    SignUpOutcome.CONFIRM: ("confirm_email_subject", "confirm_email"),
    SignUpOutcome.OPTED_OUT: ("opted_out_email_subject", "opted_out_email"),
}


def welcome_email(payment: Payment, outcome: SignUpOutcome, sms_failed: bool, replies: Replies) -> OutboundEmail:
    """The email for a completed sign-up, saying what happens with texts; with a note when the text that was due
    (the welcome, or the request to reply YES) could not be delivered."""
    subject_kind, body_kind = _KINDS[outcome]
    values = {"membership": membership_text(payment), "phone": payment.phone.e164}
    body = replies.text(body_kind, **values)
    if sms_failed and outcome is not SignUpOutcome.OPTED_OUT:
        body += "\n\n" + replies.text("welcome_email_sms_failed", phone=payment.phone.e164)
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return OutboundEmail(
        id=f"welcome-{payment.id}", to=payment.email, subject=replies.text(subject_kind),
        text="\n\n".join(paragraphs), html=f"<!doctype html><html><body>{html}</body></html>",
    )


def membership_text(payment: Payment) -> str:
    """Free, $10 monthly, $25 one-time."""
    return Tier.of(payment).label


def thank_you_email(payment: Payment, subject: str, text: str) -> OutboundEmail:
    """The thank-you email for a member's later gift or plan (the welcome goes once): the text, as written."""
    return OutboundEmail(
        id=f"thanks-{payment.id}", to=payment.email, subject=subject, text=text,
        html=f"<!doctype html><html><body><p>{escape(text)}</p></body></html>",
    )
