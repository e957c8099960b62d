"""Weft: an SMS-first community membership service."""
