"""Sender ids: 3-11 ASCII letters and digits, not only digits."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import RuleViolation, validate_sender


@pytest.mark.parametrize(
    "sender", ["ABC", "abc", "YourCompany", "Shop42", "A1B", "42Shop", "x" * 11, "0000000000A"]
)
def test_validate_sender_accepts(sender: str) -> None:
    assert validate_sender(sender) == sender


@pytest.mark.parametrize(
    ("sender", "rule"),
    [
        ("", "sender.length"),
        ("AB", "sender.length"),
        ("x" * 12, "sender.length"),
        ("YourCompany1", "sender.length"),
        ("Your Company", "sender.charset"),
        ("Café", "sender.charset"),
        ("Shop-42", "sender.charset"),
        ("Shop_42", "sender.charset"),
        ("Shop.fr", "sender.charset"),
        (" Shop", "sender.charset"),
        ("Shop\n", "sender.charset"),
        ("１２３ABC", "sender.charset"),
        ("123", "sender.all_digits"),
        ("36180", "sender.all_digits"),
        ("12345678901", "sender.all_digits"),
    ],
)
def test_validate_sender_refuses(sender: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        validate_sender(sender, field="sms.sender")
    assert (caught.value.field, caught.value.rule) == ("sms.sender", rule)


_alnum = string.ascii_letters + string.digits


@given(
    st.text(alphabet=_alnum, min_size=2, max_size=10),
    st.sampled_from(string.ascii_letters),
    st.integers(0, 10),
)
def test_alphanumeric_senders_with_a_letter_are_accepted(base: str, letter: str, at: int) -> None:
    sender = base[:at] + letter + base[at:]
    assert validate_sender(sender) == sender


@given(st.text(max_size=15))
def test_any_sender_is_accepted_unchanged_or_refused_by_a_named_rule(sender: str) -> None:
    try:
        accepted = validate_sender(sender)
    except RuleViolation as violation:
        assert violation.field == "sender"
        assert violation.rule in ("sender.length", "sender.charset", "sender.all_digits")
        return
    assert accepted == sender
    assert 3 <= len(sender) <= 11
    assert set(sender) <= set(_alnum)
    assert not sender.isdigit()
