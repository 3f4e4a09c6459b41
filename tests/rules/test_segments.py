"""SMS encoding and segment counting, against examples and a reference split on raw units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import (
    GSM7_BASIC_CHARS,
    GSM7_EXTENSION_CHARS,
    Encoding,
    SegmentInfo,
    analyze,
    count_parts,
    is_gsm7,
    split_parts,
)

# 3GPP TS 23.038 default alphabet in code order 0x00-0x7F; 0x1B is the escape to the extension.
ESC = "\x1b"
GSM_DEFAULT_ALPHABET = [
    *"@£$¥èéùìòÇ\nØø\rÅå",
    *"Δ_ΦΓΛΩΠΨΣΘΞ",
    ESC,
    *"ÆæßÉ",
    *" !\"#¤%&'()*+,-./",
    *"0123456789:;<=>?",
    *"¡ABCDEFGHIJKLMNO",
    *"PQRSTUVWXYZÄÖÑÜ§",
    *"¿abcdefghijklmno",
    *"pqrstuvwxyzäöñüà",
]
GSM_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


def test_tables_match_the_standard() -> None:
    assert len(GSM_DEFAULT_ALPHABET) == 128
    assert GSM_DEFAULT_ALPHABET[0x09] == "Ç"
    assert GSM_DEFAULT_ALPHABET[0x24] == "¤"
    assert GSM_DEFAULT_ALPHABET[0x40] == "¡"
    assert GSM_DEFAULT_ALPHABET[0x7F] == "à"
    assert set(GSM_DEFAULT_ALPHABET) - {ESC} == GSM7_BASIC_CHARS
    assert set(GSM_EXTENSION_TABLE.values()) == GSM7_EXTENSION_CHARS
    assert ESC not in GSM7_BASIC_CHARS


def reference_units(text: str) -> tuple[Encoding, list[str]]:
    """The text as the units a phone receives: ESC+char for extension, surrogates for UCS-2."""
    basic = set(GSM_DEFAULT_ALPHABET) - {ESC}
    extension = set(GSM_EXTENSION_TABLE.values())
    if all(char in basic or char in extension for char in text):
        units: list[str] = []
        for char in text:
            units.extend([ESC, char] if char in extension else [char])
        return Encoding.GSM7, units
    raw = text.encode("utf-16-be")
    return Encoding.UCS2, [raw[i : i + 2].decode("latin-1") for i in range(0, len(raw), 2)]


def reference_split(text: str) -> list[str]:
    """Cut the unit stream in full-size chunks, backing off one unit where a cut would land
    between an escape and its character or between two surrogates."""
    encoding, units = reference_units(text)
    single, per_part = (160, 153) if encoding is Encoding.GSM7 else (70, 67)
    if not units:
        return []
    if len(units) <= single:
        return [text]
    chunks: list[list[str]] = []
    rest = units
    while rest:
        cut = min(per_part, len(rest))
        if cut < len(rest):
            last = rest[cut - 1]
            if encoding is Encoding.GSM7 and last == ESC:
                cut -= 1
            if encoding is Encoding.UCS2 and 0xD8 <= ord(last[0]) <= 0xDB:
                cut -= 1
        chunks.append(rest[:cut])
        rest = rest[cut:]
    if encoding is Encoding.GSM7:
        return ["".join(unit for unit in chunk if unit != ESC) for chunk in chunks]
    return [
        b"".join(unit.encode("latin-1") for unit in chunk).decode("utf-16-be") for chunk in chunks
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentInfo(Encoding.GSM7, 0, 0, 160)),
        ("a", SegmentInfo(Encoding.GSM7, 1, 1, 160)),
        ("Votre code est 283951", SegmentInfo(Encoding.GSM7, 21, 1, 160)),
        ("a" * 160, SegmentInfo(Encoding.GSM7, 160, 1, 160)),
        ("a" * 161, SegmentInfo(Encoding.GSM7, 161, 2, 153)),
        ("a" * 306, SegmentInfo(Encoding.GSM7, 306, 2, 153)),
        ("a" * 307, SegmentInfo(Encoding.GSM7, 307, 3, 153)),
        ("a" * 459, SegmentInfo(Encoding.GSM7, 459, 3, 153)),
        ("€" * 80, SegmentInfo(Encoding.GSM7, 160, 1, 160)),
        ("€" * 81, SegmentInfo(Encoding.GSM7, 162, 2, 153)),
        ("a" * 159 + "{", SegmentInfo(Encoding.GSM7, 161, 2, 153)),
        # 152 + € does not fit in 153: € opens part 2, which then overflows into part 3
        ("a" * 152 + "€" + "a" * 152, SegmentInfo(Encoding.GSM7, 306, 3, 153)),
        ("a" * 151 + "€" + "a" * 153, SegmentInfo(Encoding.GSM7, 306, 2, 153)),
        ("Déjà vu à Noël? Ça ira.", SegmentInfo(Encoding.UCS2, 23, 1, 70)),
        ("Ça marche, Élodie", SegmentInfo(Encoding.GSM7, 17, 1, 160)),
        ("ça", SegmentInfo(Encoding.UCS2, 2, 1, 70)),
        ("fête", SegmentInfo(Encoding.UCS2, 4, 1, 70)),
        ("ê" * 70, SegmentInfo(Encoding.UCS2, 70, 1, 70)),
        ("ê" * 71, SegmentInfo(Encoding.UCS2, 71, 2, 67)),
        ("ê" * 134, SegmentInfo(Encoding.UCS2, 134, 2, 67)),
        ("ê" * 135, SegmentInfo(Encoding.UCS2, 135, 3, 67)),
        ("😀" * 35, SegmentInfo(Encoding.UCS2, 70, 1, 70)),
        ("😀" * 36, SegmentInfo(Encoding.UCS2, 72, 2, 67)),
        # 66 units then a surrogate pair: the pair moves whole to part 2
        ("ê" * 66 + "😀" + "ê" * 66, SegmentInfo(Encoding.UCS2, 134, 3, 67)),
        ("ê" * 65 + "😀" + "ê" * 67, SegmentInfo(Encoding.UCS2, 134, 2, 67)),
        ("\x1b", SegmentInfo(Encoding.UCS2, 1, 1, 70)),
        ("line\r\nnext", SegmentInfo(Encoding.GSM7, 10, 1, 160)),
        ("\f", SegmentInfo(Encoding.GSM7, 2, 1, 160)),
    ],
)
def test_analyze(text: str, expected: SegmentInfo) -> None:
    assert analyze(text) == expected
    assert count_parts(text) == expected.parts
    assert len(split_parts(text)) == expected.parts


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("a" * 152 + "€" + "a" * 152, [152, 152, 1]),
        ("ê" * 66 + "😀" + "ê" * 66, [66, 66, 1]),
        ("a" * 161, [153, 8]),
    ],
)
def test_split_parts_keeps_multi_unit_characters_whole(text: str, lengths: list[int]) -> None:
    assert [len(part) for part in split_parts(text)] == lengths


@pytest.mark.parametrize(
    ("text", "gsm"),
    [
        ("", True),
        ("Hello @£$¥ {[~]} € \\ ^ |", True),
        ("ΔΦΓΛΩΠΨΣΘΞ", True),
        ("àèéìòù ÄÖÑÜ äöñü ÅåÆæßÉÇØø ¡¿§¤", True),
        ("ç", False),
        ("â", False),
        ("œ", False),
        ("«guillemets»", False),
        ("’", False),
        ("`", False),
        ("😀", False),
        ("\t", False),
    ],
)
def test_is_gsm7(text: str, gsm: bool) -> None:
    assert is_gsm7(text) is gsm


# -- properties -----------------------------------------------------------------------------

_gsm_alphabet = sorted(GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS)
_gsm_text = st.text(alphabet=st.sampled_from(_gsm_alphabet), max_size=700)
_ucs2_text = st.text(alphabet=st.sampled_from([*"aé€ê€ç", "😀", "𝄞", "\U0001f600"]), max_size=300)
_near_boundary = st.builds(
    lambda filler, parts, back, tail: (
        filler * (parts * (153 if filler == "a" else 67) - back) + tail
    ),
    st.sampled_from(["a", "ê"]),
    st.integers(1, 3),
    st.integers(0, 3),
    st.text(alphabet=st.sampled_from(["a", "€", "ê", "😀", "{"]), min_size=1, max_size=6),
)
_any_text = st.one_of(_gsm_text, _ucs2_text, _near_boundary, st.text(max_size=400))


@given(_any_text)
def test_analyze_agrees_with_a_reference_split(text: str) -> None:
    info = analyze(text)
    expected = reference_split(text)
    encoding, units = reference_units(text)
    assert info.encoding is encoding
    assert info.units == len(units)
    assert info.parts == len(expected)
    assert split_parts(text) == expected


@given(_any_text)
def test_parts_reassemble_and_fit(text: str) -> None:
    info = analyze(text)
    parts = split_parts(text)
    assert "".join(parts) == text
    assert all(parts)
    for part in parts:
        assert analyze(part).units <= info.per_part
    assert info.parts == 0 or info.units <= info.parts * info.per_part


@given(_any_text)
def test_parts_never_decrease_as_text_grows(text: str) -> None:
    counts = [count_parts(text[:end]) for end in range(0, len(text) + 1, 7)]
    counts.append(count_parts(text))
    assert counts == sorted(counts)


@given(_any_text, st.characters())
def test_appending_a_character_never_saves_a_part(text: str, char: str) -> None:
    assert count_parts(text + char) >= count_parts(text)


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC_CHARS)), min_size=1, max_size=160))
def test_basic_gsm_text_up_to_160_characters_is_one_part(text: str) -> None:
    info = analyze(text)
    assert (info.encoding, info.units, info.parts) == (Encoding.GSM7, len(text), 1)


@given(st.text(alphabet=st.sampled_from(_gsm_alphabet), min_size=1, max_size=80))
def test_any_gsm_text_up_to_80_characters_is_one_part(text: str) -> None:
    assert count_parts(text) == 1
    assert is_gsm7(text)


@given(st.text(min_size=1, max_size=35))
def test_any_text_up_to_35_characters_is_one_part(text: str) -> None:
    assert count_parts(text) == 1


@pytest.mark.parametrize(
    ("filler", "single", "per_part"), [("a", 160, 153), ("ê", 70, 67), ("€", 160, 153)]
)
def test_part_boundaries_of_uniform_texts(filler: str, single: int, per_part: int) -> None:
    """Around each boundary, one-unit (basic GSM, BMP UCS-2) and two-unit (``€``) texts."""
    width = 2 if filler == "€" else 1
    for units in (single, single + width, 2 * per_part, 2 * per_part + width, 3 * per_part):
        text = filler * (units // width)
        assert analyze(text).parts == len(reference_split(text)), (filler, units)
