"""The opt-out mention French premium SMS must carry on Octopush.

Octopush SMS API docs (``sms_type``): in France, a premium (``FR``) text without the mention
« STOP au XXXXX » is refused (error 121). The match is case-sensitive, as the docs write it:
``STOP au`` then one space then the short code's digits.
"""

from __future__ import annotations

import re
from typing import Final

from postier.rules.errors import RuleViolation

_STOP_MENTION: Final = re.compile(r"STOP au [0-9]+")
_SHORT_CODE: Final = re.compile(r"[0-9]+")


def has_stop_mention(text: str) -> bool:
    """Whether ``text`` holds ``STOP au <digits>`` anywhere."""
    return _STOP_MENTION.search(text) is not None


def require_stop_mention(text: str, *, field: str = "text") -> None:
    """Raise ``RuleViolation`` (``text.stop_mention``) where Octopush would answer 121."""
    if not has_stop_mention(text):
        raise RuleViolation(
            field,
            "text.stop_mention",
            "French premium SMS must contain 'STOP au <short code>' (Octopush error 121)",
        )


def add_stop_mention(text: str, short_code: str) -> str:
    """``text`` with ``\\nSTOP au <short_code>`` appended, unless it already has a mention.

    For marketing campaigns; the text grows, so check its limits after adding. No newline is
    added to an empty text or one that already ends with a newline.
    """
    if not _SHORT_CODE.fullmatch(short_code):
        raise RuleViolation("short_code", "stop.short_code", "STOP short code must be digits")
    if has_stop_mention(text):
        return text
    mention = f"STOP au {short_code}"
    separator = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{separator}{mention}"
