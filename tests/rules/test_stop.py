"""Octopush's French premium opt-out mention: « STOP au XXXXX » (Octopush SMS API docs)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import RuleViolation, add_stop_mention, has_stop_mention, require_stop_mention


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("Soldes -50% ce week-end\nSTOP au 36180", True),
        ("STOP au 30101", True),
        ("Offre STOP au 1 valable", True),
        ("Offre valable.STOP au 36180.", True),
        ("stop au 36180", False),
        ("STOP AU 36180", False),
        ("Stop au 36180", False),
        ("STOP au XXXXX", False),
        ("STOP 36180", False),
        ("STOP  au 36180", False),
        ("STOP au  36180", False),
        ("STOP au", False),
        ("STOP au ３６１８０", False),
        ("", False),
    ],
)
def test_has_stop_mention(text: str, present: bool) -> None:
    assert has_stop_mention(text) is present


def test_require_stop_mention() -> None:
    require_stop_mention("Promo\nSTOP au 36180")
    with pytest.raises(RuleViolation) as caught:
        require_stop_mention("Promo\nstop au 36180", field="sms_text")
    assert (caught.value.field, caught.value.rule) == ("sms_text", "text.stop_mention")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Soldes -50%", "Soldes -50%\nSTOP au 36180"),
        ("Soldes -50%\n", "Soldes -50%\nSTOP au 36180"),
        ("", "STOP au 36180"),
        ("Soldes\nSTOP au 30101", "Soldes\nSTOP au 30101"),
        ("Soldes stop au 36180", "Soldes stop au 36180\nSTOP au 36180"),
    ],
)
def test_add_stop_mention(text: str, expected: str) -> None:
    assert add_stop_mention(text, "36180") == expected


@pytest.mark.parametrize("code", ["", "XXXXX", "36 180", "36180\n", "٣٦١٨٠"])
def test_add_stop_mention_refuses_a_bad_short_code(code: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        add_stop_mention("Promo", code)
    assert (caught.value.field, caught.value.rule) == ("short_code", "stop.short_code")


@given(st.text(max_size=80), st.from_regex(r"[0-9]{1,6}", fullmatch=True))
def test_add_stop_mention_always_leaves_a_mention_once(text: str, code: str) -> None:
    once = add_stop_mention(text, code)
    assert has_stop_mention(once)
    require_stop_mention(once)
    assert once.startswith(text)
    assert add_stop_mention(once, code) == once
    if not has_stop_mention(text):
        assert once.endswith(f"STOP au {code}")
