"""SMS encoding and segment counting (3GPP TS 23.038 / GSM 03.38, TS 23.040 concatenation).

A text made only of GSM 03.38 characters goes as GSM-7: 160 septets in one part, 153 per part
once split (the concatenation header takes 7). Extension-table characters (``^{}\\[~]|€`` and
form feed) cost two septets (escape + code), and a phone cannot rebuild one cut in two, so a
part that has a single septet left ends early and the character opens the next part.

Any other character switches the whole text to UCS-2: 70 UTF-16 code units in one part, 67 per
part once split. Characters outside the BMP (most emoji) are a surrogate pair, two units, and
are never cut across parts either.

Providers split the same way (docs/PROVIDERS.md: 160/153, 70/67); Octopush bills per part.
The empty text is 0 parts: producers refuse it before counting (``limits.check_text``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: GSM 03.38 default alphabet, in code order 0x00–0x7F, without 0x1B (the escape to the
#: extension table, not a character of its own)
GSM7_BASIC_CHARS: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each is sent as escape + code, two septets
GSM7_EXTENSION_CHARS: Final = frozenset("\f^{}\\[]~|€")
GSM7_CHARS: Final = GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS

GSM7_SINGLE_PART: Final = 160
GSM7_PER_PART: Final = 153
UCS2_SINGLE_PART: Final = 70
UCS2_PER_PART: Final = 67

_BMP_LAST: Final = 0xFFFF


class Encoding(StrEnum):
    """How a text goes over the air."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a text costs: its encoding, its size in units, its parts and their capacity.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2; ``per_part`` is the
    capacity of each part as sent (160/70 for a single part, 153/67 once split).
    """

    encoding: Encoding
    units: int
    parts: int
    per_part: int


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return GSM7_CHARS.issuperset(text)


def _unit_widths(text: str, encoding: Encoding) -> Iterator[int]:
    if encoding is Encoding.GSM7:
        return (2 if char in GSM7_EXTENSION_CHARS else 1 for char in text)
    return (2 if ord(char) > _BMP_LAST else 1 for char in text)


def _capacities(encoding: Encoding) -> tuple[int, int]:
    if encoding is Encoding.GSM7:
        return GSM7_SINGLE_PART, GSM7_PER_PART
    return UCS2_SINGLE_PART, UCS2_PER_PART


def _part_starts(widths: list[int], per_part: int) -> list[int]:
    """Indexes (in characters) where each part begins, filling parts greedily."""
    starts = [0]
    filled = 0
    for index, width in enumerate(widths):
        if filled + width > per_part:
            starts.append(index)
            filled = 0
        filled += width
    return starts


def _one_unit_each(encoding: Encoding, units: int) -> SegmentInfo:
    """``analyze`` of a text whose every character is one unit: parts fill up exactly."""
    single, per_part = _capacities(encoding)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single)
    return SegmentInfo(encoding, units, -(-units // per_part), per_part)


def analyze(text: str) -> SegmentInfo:
    """Encoding, size and number of parts of ``text`` as an SMS."""
    # the common texts (basic GSM alphabet only; UCS-2 within the BMP) are one unit per
    # character: counted without walking the text in Python (the sandbox and every send)
    if GSM7_BASIC_CHARS.issuperset(text):
        return _one_unit_each(Encoding.GSM7, len(text))
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    if encoding is Encoding.UCS2 and ord(max(text)) <= _BMP_LAST:
        return _one_unit_each(Encoding.UCS2, len(text))
    single, per_part = _capacities(encoding)
    widths = list(_unit_widths(text, encoding))
    units = sum(widths)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single)
    return SegmentInfo(encoding, units, len(_part_starts(widths, per_part)), per_part)


def split_parts(text: str) -> list[str]:
    """The texts of the parts ``text`` goes out as, in order (``[]`` for the empty text)."""
    info = analyze(text)
    if info.parts <= 1:
        return [text] if text else []
    starts = _part_starts(list(_unit_widths(text, info.encoding)), info.per_part)
    ends = [*starts[1:], len(text)]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


def count_parts(text: str) -> int:
    """Number of SMS parts ``text`` is billed as."""
    return analyze(text).parts
