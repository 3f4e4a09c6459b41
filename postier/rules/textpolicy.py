"""What a route does with characters outside its provider's alphabet: the text policy.

Each SMS route has one (settings: ``primotexto.text_policy``, ``octopush.text_policy``,
``afilnet.sms_text_policy``):

- ``refuse``: the text must hold only the alphabet's characters (``text.charset``);
- ``transliterate``: each other character becomes its closest spelling in the alphabet
  (ê→e, œ→oe, ’→', « »→", non-breaking spaces → space), and the change is reported so the
  caller can record it on the message;
- ``unicode``: the text goes as written, in UCS-2 (70 characters per part instead of 160),
  where the provider takes UCS-2. Primotexto does not: its API docs list the characters it
  accepts (``charsets.PRIMOTEXTO_ALLOWED_CHARS``) and answer error 31 for any other.

The alphabet is the provider's (``limits.TextLimit.alphabet``): Primotexto's published list,
or GSM 03.38 for Octopush and Afilnet SMS. Transliteration keeps every character the alphabet
has (é è à ù stay on Primotexto, Ç É € [ ] stay on GSM routes), uses ``FRENCH_SPELLINGS`` for
the typography of French texts, then the ``anyascii`` library for anything else; what still
falls outside the alphabet (control characters) is dropped, so the result always fits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from anyascii import anyascii

from postier.rules.charsets import check_characters
from postier.rules.errors import RuleViolation
from postier.rules.limits import text_limit

TextPolicy = Literal["refuse", "transliterate", "unicode"]
TEXT_POLICIES: Final[tuple[str, ...]] = get_args(TextPolicy)

#: no-break, narrow no-break, thin… spaces and the tab: a plain space
_SPACES: Final = "\u00a0\u202f\u205f\u3000\t" + "".join(map(chr, range(0x2000, 0x200B)))

#: the closest spelling of characters French texts hold, tried before the fallback library
#: (which writes « » as << >> and € as EUR); used only for a character outside the alphabet
FRENCH_SPELLINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "’": "'",
        "‘": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "´": "'",
        "`": "'",
        "«": '"',
        "»": '"',
        "‹": '"',
        "›": '"',
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "–": "-",
        "—": "-",
        "‐": "-",
        "‑": "-",
        "−": "-",
        "…": "...",
        "€": "EUR",
        "[": "(",
        "]": ")",
        "\r": "\n",
        **dict.fromkeys(_SPACES, " "),
    }
)


@dataclass(frozen=True, slots=True)
class TextChange:
    """One character (or ``\\r\\n``) replaced ``count`` times by ``replacement``."""

    original: str
    replacement: str
    count: int


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """A text after its route's policy: what goes out, and what was changed."""

    text: str
    original: str
    policy: TextPolicy
    provider: str
    changes: tuple[TextChange, ...] = ()

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def describe(self) -> str:
        """One line for a ledger event or a dry-run: ``'ê'→'e' ×2, …``."""
        listed = ", ".join(f"{c.original!r}→{c.replacement!r} ×{c.count}" for c in self.changes)
        return f"transliterated for {self.provider}: {listed or 'normalised'}"

    def to_payload(self) -> dict[str, Any]:
        """What the message's payload records (``text_policy``): the text as written too."""
        return {
            "policy": self.policy,
            "original": self.original,
            "changes": [
                {"from": c.original, "to": c.replacement, "count": c.count} for c in self.changes
            ],
        }


def _fits(text: str, alphabet: frozenset[str]) -> bool:
    return alphabet.issuperset(text)


def closest_spelling(char: str, alphabet: frozenset[str]) -> str:
    """``char`` spelt with ``alphabet``'s characters only (possibly ``""``)."""
    if char in alphabet:
        return char
    spelt = FRENCH_SPELLINGS.get(char)
    if spelt is not None and _fits(spelt, alphabet):
        return spelt
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    if base and base != char and _fits(base, alphabet):
        return base
    pieces = []
    for c in anyascii(char):
        alternative = FRENCH_SPELLINGS.get(c, "")
        if c in alphabet:
            pieces.append(c)
        elif _fits(alternative, alphabet):
            pieces.append(alternative)
    return "".join(pieces)


def transliterate(text: str, alphabet: frozenset[str]) -> tuple[str, tuple[TextChange, ...]]:
    """``text`` within ``alphabet``, and the replacements made (in order of first use)."""
    if _fits(text, alphabet):
        return text, ()
    counts: dict[tuple[str, str], int] = {}
    pieces: list[str] = []
    composed = unicodedata.normalize("NFC", text)
    index = 0
    while index < len(composed):
        # a CRLF line end is one line end, not two
        crlf = composed.startswith("\r\n", index) and "\r" not in alphabet
        original = "\r\n" if crlf else composed[index]
        index += len(original)
        spelt = closest_spelling("\n" if crlf else original, alphabet)
        if spelt != original:
            counts[(original, spelt)] = counts.get((original, spelt), 0) + 1
        pieces.append(spelt)
    changes = tuple(TextChange(o, r, n) for (o, r), n in counts.items())
    return "".join(pieces), changes


def apply_text_policy(
    provider: str,
    text: str,
    policy: TextPolicy,
    *,
    transport: str | None = None,
    field: str = "text",
) -> PolicyOutcome:
    """``text`` as ``provider``'s route sends it under ``policy``; raises ``RuleViolation``.

    ``text.charset`` when ``refuse`` meets a character outside the alphabet, ``text.policy``
    for ``unicode`` on a provider without UCS-2 or an unknown policy. A transport without an
    alphabet (WhatsApp) takes the text as written.
    """
    if policy not in TEXT_POLICIES:
        raise RuleViolation(
            field, "text.policy", f"text policy {policy!r}: use one of {', '.join(TEXT_POLICIES)}"
        )
    limit = text_limit(provider, transport)
    unchanged = PolicyOutcome(text, text, policy, provider)
    if limit.alphabet is None:
        return unchanged
    if policy == "refuse":
        check_characters(text, limit.alphabet, provider=provider, field=field)
        return unchanged
    if policy == "unicode":
        if not limit.takes_ucs2:
            raise RuleViolation(
                field,
                "text.policy",
                f"{provider} takes no UCS-2 text (only the characters its API docs list):"
                " set its text policy to 'transliterate' or 'refuse'",
            )
        return unchanged
    spelt, changes = transliterate(text, limit.alphabet)
    return PolicyOutcome(spelt, text, policy, provider, changes)
