"""Primotexto's published character list (Primotexto API docs, "Caractères autorisés")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import (
    GSM7_CHARS,
    PRIMOTEXTO_ALLOWED_CHARS,
    RuleViolation,
    check_characters,
    check_primotexto_text,
)

# copied from the Primotexto API docs, "Caractères autorisés", then space and newline
DOCS_LIST = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
)


def test_allowed_set_is_the_docs_list_plus_space_and_newline() -> None:
    assert frozenset(DOCS_LIST) | {" ", "\n"} == PRIMOTEXTO_ALLOWED_CHARS
    assert PRIMOTEXTO_ALLOWED_CHARS <= GSM7_CHARS


@pytest.mark.parametrize(
    "text",
    [
        "Code de confirmation: 283951",
        "Votre RDV est confirmé le 12/03 à 14h.\nRépondez OUI ou NON",
        "Prix: 5$ ou 4£ (-20%) {promo} ~ fin | ^_^ \\o/ 'ok' \"ok\"",
        "ÑñÅåÜü èéùìò #1 @home <a> = b; c, d. e? f! g* h+",
        "",
    ],
)
def test_accepts_listed_characters(text: str) -> None:
    check_primotexto_text(text)


@pytest.mark.parametrize(
    ("text", "char", "position"),
    [
        ("École", "É", 0),
        ("Prix: 5€", "€", 7),
        ("a\r\nb", "\r", 1),
        ("[x]", "[", 0),
        ("Ça va", "Ç", 0),
        ("fête", "ê", 1),
        ("tab\there", "\t", 3),
        ("ok 😀", "😀", 3),
        ("Δ", "Δ", 0),
        ("¿qué?", "¿", 0),
    ],
)
def test_names_first_refused_character_and_position(text: str, char: str, position: int) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_primotexto_text(text, field="message")
    violation = caught.value
    assert (violation.field, violation.rule) == ("message", "text.charset")
    assert repr(char) in violation.message
    assert f"U+{ord(char):04X}" in violation.message
    assert f"position {position} " in violation.message


def test_check_characters_names_the_provider() -> None:
    with pytest.raises(RuleViolation, match="not allowed by Acme"):
        check_characters("ab", frozenset("a"), provider="Acme")


_allowed = st.text(alphabet=st.sampled_from(sorted(PRIMOTEXTO_ALLOWED_CHARS)), max_size=60)
_refused = st.characters().filter(lambda char: char not in PRIMOTEXTO_ALLOWED_CHARS)


@given(_allowed)
def test_text_of_allowed_characters_passes(text: str) -> None:
    check_primotexto_text(text)


@given(_allowed, _refused, _allowed)
def test_reports_the_position_of_the_first_refused_character(
    head: str, bad: str, tail: str
) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_primotexto_text(head + bad + tail + bad)
    assert f"position {len(head)} " in caught.value.message
    assert caught.value.rule == "text.charset"
