"""Twilio: the sender, the webhook parser and the signature check."""
