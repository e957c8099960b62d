from __future__ import annotations

import math

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Characters GSM-7 sends as an escape plus a character: each costs two of the 160."""


def sms_segments(text: str) -> int:
    """How many SMS parts carry this text: GSM-7 160 single / 153 per part, else UCS-2 70 single / 67 per part."""
    septets = _gsm_septets(text)
    if septets is not None:
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _gsm_septets(text: str) -> int | None:
    """Septets in GSM-7, or None when some character needs UCS-2."""
    count = 0
    for char in text:
        if char in GSM_BASIC:
            count += 1
        elif char in GSM_EXTENSION:
            count += 2
        else:
            return None
    return count
