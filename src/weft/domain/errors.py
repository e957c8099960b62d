from __future__ import annotations


class WeftError(Exception):
    """A fact about bad input or state; entry points map these to responses."""


class InvalidPhoneNumber(WeftError):
    pass


class MalformedWebhook(WeftError):
    pass


class InvalidSignature(WeftError):
    pass


class UnknownSubscriber(WeftError):
    pass


class InvalidCheckout(WeftError):
    """One field of a checkout request is wrong; `field` names it for the page, and the message is a sentence the
    page shows a person as it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownJourney(WeftError):
    pass


class JourneyBusy(WeftError):
    """A worker is running the journey right now; a retry must wait until it is done."""


class UnknownCampaign(WeftError):
    pass


class PaymentProviderUnavailable(WeftError):
    """The payment provider failed transiently; the caller may retry (a webhook answers 5xx)."""


class PaymentProviderThrottled(PaymentProviderUnavailable):
    """The payment provider asked us to slow down (HTTP 429): wait `retry_after` seconds; not a failed attempt."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PaymentProviderError(WeftError):
    """The payment provider refused a request for good (bad parameters, unknown object)."""


class ProviderUnavailable(WeftError):
    """An SMS provider could not be read now (network, 429, 5xx): try again later."""


class MirrorUnavailable(WeftError):
    """The organisers' base could not be written or read now (network, 429, 5xx): try again after
    `retry_after` seconds at the earliest."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MirrorRejected(WeftError):
    """The organisers' base refused the records for good (a missing field, a wrong type, a bad token): it will
    refuse them again until an organiser fixes the base or the settings."""


class InvalidCursor(WeftError):
    """A page cursor that no list handed out (altered, truncated, or from another list)."""


class PlanExists(InvalidCheckout):
    """The number or email already has a monthly plan, so a second one would bill twice; the message says what to
    do instead, in words for the member."""

    def __init__(self, message: str) -> None:
        WeftError.__init__(self, message)
        self.field = "payment_type"
