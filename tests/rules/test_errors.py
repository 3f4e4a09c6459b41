"""RuleViolation itself, and the promise every rule keeps: a violation names field and rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import postier.rules
from postier.rules import (
    RuleViolation,
    add_stop_mention,
    check_file_url,
    check_primotexto_text,
    check_text,
    normalize_number,
    number_type,
    require_stop_mention,
    to_international_digits,
    validate_sender,
)


def test_violation_is_a_value_error_that_says_field_and_rule() -> None:
    violation = RuleViolation("sender", "sender.length", "too short")
    assert isinstance(violation, ValueError)
    assert (violation.field, violation.rule, violation.message) == (
        "sender",
        "sender.length",
        "too short",
    )
    assert str(violation) == "sender: too short (rule: sender.length)"


def test_public_api_is_exported() -> None:
    for name in postier.rules.__all__:
        assert getattr(postier.rules, name) is not None
    assert sorted(postier.rules.__all__) == sorted(set(postier.rules.__all__))


CHECKS: dict[str, Callable[[str], object]] = {
    "normalize_number": normalize_number,
    "number_type": number_type,
    "to_international_digits": to_international_digits,
    "validate_sender": validate_sender,
    "check_primotexto_text": check_primotexto_text,
    "check_text_octopush": lambda text: check_text("octopush", text),
    "check_text_whatsapp": lambda text: check_text("afilnet", text, transport="whatsapp"),
    "check_text_unknown": lambda text: check_text(text, "hello"),
    "require_stop_mention": require_stop_mention,
    "add_stop_mention": lambda text: add_stop_mention("Promo", text),
    "check_file_url": check_file_url,
    "check_file_url_typed": lambda text: check_file_url("https://x.fr/a.pdf", text),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
@settings(deadline=None, max_examples=60)
@given(text=st.text(max_size=40))
def test_every_violation_names_a_field_and_a_rule(name: str, text: str) -> None:
    try:
        CHECKS[name](text)
    except RuleViolation as violation:
        assert violation.field.strip()
        assert violation.rule.strip()
        assert "." in violation.rule
        assert violation.message.strip()
