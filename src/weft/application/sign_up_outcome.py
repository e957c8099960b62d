from __future__ import annotations

import enum

from weft.domain.subscriber import Consent, Subscriber


class SignUpOutcome(enum.Enum):
    """What a completed sign-up means for texts, which the page and the email tell the member."""

    JOINED = "joined"
    """Consent is given: the welcome text is on its way."""
    CONFIRM = "confirm"
    """The phone is not proven yet: a confirmation request went out, and nothing else until the number replies YES."""
    OPTED_OUT = "opted_out"
    """The number opted out of texts: the membership is recorded, and nothing is texted."""


def sign_up_outcome(subscriber: Subscriber | None) -> SignUpOutcome:
    """The outcome for the number's consent as it stands now."""
    if subscriber is None:
        return SignUpOutcome.CONFIRM
    if subscriber.opted_out:
        return SignUpOutcome.OPTED_OUT
    return SignUpOutcome.JOINED if subscriber.consent is Consent.SUBSCRIBED else SignUpOutcome.CONFIRM
