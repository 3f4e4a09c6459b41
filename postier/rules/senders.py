"""Alphanumeric sender ids (the name shown instead of a number on the recipient's phone).

Both SMS providers that take one agree: 3 to 11 characters, letters and digits only
(Octopush ``sms_sender``: a-zA-Z0-9; Primotexto ``sender``: 3–11 alphanumeric; docs/PROVIDERS.md),
and Primotexto refuses a sender made only of digits (code 23). Each failure has its own rule so a
caller can tell the user what to fix; the order follows Primotexto's codes 20–23.
"""

from __future__ import annotations

import re
from typing import Final

from postier.rules.errors import RuleViolation

SENDER_MIN_LENGTH: Final = 3
SENDER_MAX_LENGTH: Final = 11
_SENDER_CHARSET: Final = re.compile(r"[A-Za-z0-9]*")


def validate_sender(sender: str, *, field: str = "sender") -> str:
    """Return ``sender`` unchanged if providers accept it, else raise ``RuleViolation``.

    Rules: ``sender.charset`` (not ASCII letters/digits; Primotexto 20), ``sender.length``
    (outside 3–11; Primotexto 21/22), ``sender.all_digits`` (Primotexto 23).
    """
    if not _SENDER_CHARSET.fullmatch(sender):
        raise RuleViolation(
            field, "sender.charset", "sender may hold only ASCII letters and digits"
        )
    if not SENDER_MIN_LENGTH <= len(sender) <= SENDER_MAX_LENGTH:
        raise RuleViolation(
            field,
            "sender.length",
            f"sender must be {SENDER_MIN_LENGTH} to {SENDER_MAX_LENGTH} characters long,"
            f" not {len(sender)}",
        )
    if sender.isdigit():
        raise RuleViolation(field, "sender.all_digits", "sender must hold at least one letter")
    return sender
