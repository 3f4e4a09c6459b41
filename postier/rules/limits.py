"""Per-provider text limits, as one table (the Apprise way): validation and docs read it.

* Octopush legacy: ``sms_text`` ≤ 459 characters (Octopush SMS API docs; three GSM parts).
* Octopush v1: ``text`` ≤ 1224 characters (eight GSM parts; docs/PROVIDERS.md).
* Primotexto: code 32 "message too long" exists but no length is published (unconfirmed):
  8 parts is our limit, the same size as Octopush v1. Its character list (code 31) applies too.
* Afilnet SMS: no limit in the sources (unconfirmed): 8 parts, like Primotexto.
* Afilnet WhatsApp: a text message is at most 4096 characters (WhatsApp Business API).

``alphabet`` is what an SMS route sends without UCS-2, the target of its text policy
(``textpolicy``): Primotexto's own list, GSM 03.38 elsewhere. ``takes_ucs2`` says whether
other characters may go as UCS-2 (Primotexto: no, error 31).

"Characters" are Python characters (code points). Whether Octopush counts an extension
character (``€``) as one or two is unconfirmed; counting one lets the provider's own check
(error 102) be the last word in that rare case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from postier.rules.charsets import PRIMOTEXTO_ALLOWED_CHARS, check_characters
from postier.rules.errors import RuleViolation
from postier.rules.segments import GSM7_CHARS, SegmentInfo, analyze


@dataclass(frozen=True, slots=True)
class TextLimit:
    """What one provider transport accepts as a message text."""

    provider: str
    transport: str
    max_characters: int | None = None
    max_parts: int | None = None
    allowed_characters: frozenset[str] | None = None
    source: str = ""
    #: the characters sent without UCS-2 (None: no SMS alphabet, e.g. WhatsApp)
    alphabet: frozenset[str] | None = None

    @property
    def takes_ucs2(self) -> bool:
        """Whether characters outside ``alphabet`` may go (as UCS-2) at all."""
        return self.allowed_characters is None


_LIMITS: Final = (
    TextLimit(
        "octopush",
        "legacy",
        max_characters=459,
        source="Octopush SMS API, sms_text",
        alphabet=GSM7_CHARS,
    ),
    TextLimit(
        "octopush",
        "v1",
        max_characters=1224,
        source="Octopush v1 sms-campaign/send",
        alphabet=GSM7_CHARS,
    ),
    TextLimit(
        "primotexto",
        "sms",
        max_parts=8,
        allowed_characters=PRIMOTEXTO_ALLOWED_CHARS,
        source="Primotexto API (codes 31, 32); part limit unconfirmed",
        alphabet=PRIMOTEXTO_ALLOWED_CHARS,
    ),
    TextLimit("afilnet", "sms", max_parts=8, source="unconfirmed", alphabet=GSM7_CHARS),
    TextLimit("afilnet", "whatsapp", max_characters=4096, source="WhatsApp text body limit"),
)

#: every known (provider, transport) and its limits
TEXT_LIMITS: Final[Mapping[tuple[str, str], TextLimit]] = MappingProxyType(
    {(limit.provider, limit.transport): limit for limit in _LIMITS}
)

#: the transport used when the caller names none (Octopush: the settings' default, legacy)
DEFAULT_TRANSPORTS: Final[Mapping[str, str]] = MappingProxyType(
    {"octopush": "legacy", "primotexto": "sms", "afilnet": "sms"}
)


def text_limit(provider: str, transport: str | None = None) -> TextLimit:
    """The limits of ``provider`` over ``transport`` (its default transport if ``None``)."""
    chosen = transport if transport is not None else DEFAULT_TRANSPORTS.get(provider)
    limit = TEXT_LIMITS.get((provider, chosen or ""))
    if limit is None:
        raise RuleViolation(
            "provider",
            "provider.unknown",
            f"no text limits for provider {provider!r} with transport {chosen!r}",
        )
    return limit


def check_text(
    provider: str, text: str, *, transport: str | None = None, field: str = "text"
) -> SegmentInfo:
    """Refuse a text the provider would refuse; return its segments for billing and the ledger.

    Rules: ``text.empty`` (empty or only whitespace; Primotexto 30, Octopush 107),
    ``text.charset``, ``text.length`` (characters), ``text.parts`` (SMS parts).

    A text checked before is answered from a cache: a bulk send of one text checks it once,
    not once per recipient (a refusal is not cached: it raises each time).
    """
    return _checked_text(provider, text, transport, field)


@lru_cache(maxsize=1024)
def _checked_text(provider: str, text: str, transport: str | None, field: str) -> SegmentInfo:
    limit = text_limit(provider, transport)
    if not text.strip():
        raise RuleViolation(field, "text.empty", "message text is empty")
    if limit.allowed_characters is not None:
        check_characters(text, limit.allowed_characters, provider=provider, field=field)
    if limit.max_characters is not None and len(text) > limit.max_characters:
        raise RuleViolation(
            field,
            "text.length",
            f"message text has {len(text)} characters;"
            f" {provider} {limit.transport} takes at most {limit.max_characters}",
        )
    info = analyze(text)
    if limit.max_parts is not None and info.parts > limit.max_parts:
        raise RuleViolation(
            field,
            "text.parts",
            f"message text needs {info.parts} SMS parts;"
            f" {provider} {limit.transport} takes at most {limit.max_parts}",
        )
    return info
