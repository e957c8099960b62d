"""The organisers' Airtable base: the copy of numbers and payments Weft keeps in step, its schema check and the
one-time import (pyairtable, throttled and retried by Weft, run off the event loop)."""
