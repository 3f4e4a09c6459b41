"""Characters a provider accepts in a message text, where it publishes a list.

Primotexto (API docs, "Caractères autorisés") lists the characters below; anything else is
error 31. The list is narrower than GSM 03.38 (no ``É``, ``Ç``, ``[``, ``]``, ``€``, Greek
capitals…) and is enforced exactly as published, plus the space and the newline which every
example uses. The list ends with ``\\'``: read literally, both the backslash and the apostrophe
are allowed (whether the backslash was only an escape in their page is unconfirmed). ``\\r`` is
not in the list: callers send ``\\n`` line ends.
"""

from __future__ import annotations

from typing import Final

from postier.rules.errors import RuleViolation

#: verbatim from the Primotexto API docs, followed by space and newline
PRIMOTEXTO_ALLOWED_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
    " \n"
)


def check_characters(
    text: str, allowed: frozenset[str], *, provider: str, field: str = "text"
) -> None:
    """Raise ``RuleViolation`` (``text.charset``) at the first character not in ``allowed``.

    The message names the character, its code point and its 0-based position, so the caller
    can show the user what to change.
    """
    for position, char in enumerate(text):
        if char not in allowed:
            raise RuleViolation(
                field,
                "text.charset",
                f"character {char!r} (U+{ord(char):04X}) at position {position}"
                f" is not allowed by {provider}",
            )


def check_primotexto_text(text: str, *, field: str = "text") -> None:
    """Refuse what Primotexto would answer with error 31 (invalid characters)."""
    check_characters(text, PRIMOTEXTO_ALLOWED_CHARS, provider="Primotexto", field=field)
