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
