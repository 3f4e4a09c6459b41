"""Per-provider text limits: each table row at its limit and one past it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.providers.results import Provider
from postier.rules import (
    DEFAULT_TRANSPORTS,
    TEXT_LIMITS,
    Encoding,
    RuleViolation,
    analyze,
    check_text,
    text_limit,
)


def _violation(provider: str, text: str, transport: str | None = None) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        check_text(provider, text, transport=transport)
    return caught.value


@pytest.mark.parametrize(
    ("provider", "transport", "longest", "rule"),
    [
        ("octopush", "legacy", "a" * 459, "text.length"),
        ("octopush", "legacy", "ê" * 459, "text.length"),
        ("octopush", "v1", "a" * 1224, "text.length"),
        ("octopush", "v1", "😀" * 1224, "text.length"),
        ("primotexto", "sms", "a" * 1224, "text.parts"),
        ("primotexto", "sms", "a" * 1222 + "{", "text.parts"),
        ("afilnet", "sms", "a" * 1224, "text.parts"),
        ("afilnet", "sms", "ê" * 536, "text.parts"),
        # 67 units per part hold 33 emoji, not 33.5
        ("afilnet", "sms", "😀" * 264, "text.parts"),
        ("afilnet", "whatsapp", "a" * 4096, "text.length"),
        ("afilnet", "whatsapp", "😀" * 4096, "text.length"),
    ],
)
def test_longest_text_passes_and_one_more_character_fails(
    provider: str, transport: str, longest: str, rule: str
) -> None:
    assert check_text(provider, longest, transport=transport) == analyze(longest)
    longer = longest + longest[-1]
    violation = _violation(provider, longer, transport)
    assert (violation.field, violation.rule) == ("text", rule)


def test_octopush_defaults_to_the_legacy_transport() -> None:
    assert DEFAULT_TRANSPORTS["octopush"] == "legacy"
    assert _violation("octopush", "a" * 460).rule == "text.length"
    assert check_text("octopush", "a" * 460, transport="v1").parts == 4


def test_provider_enum_values_are_accepted() -> None:
    info = check_text(Provider.PRIMOTEXTO, "Code de confirmation: 283951")
    assert (info.encoding, info.parts) == (Encoding.GSM7, 1)


def test_every_provider_has_a_default_transport_in_the_table() -> None:
    for provider in Provider:
        assert text_limit(provider) is TEXT_LIMITS[(provider, DEFAULT_TRANSPORTS[provider])]


@pytest.mark.parametrize("key", sorted(TEXT_LIMITS))
@pytest.mark.parametrize("text", ["", " ", "\n\t ", "\u00a0"])
def test_empty_or_blank_text_is_refused_everywhere(key: tuple[str, str], text: str) -> None:
    provider, transport = key
    violation = _violation(provider, text, transport)
    assert violation.rule == "text.empty"


@pytest.mark.parametrize(
    ("text", "position"), [("École", 0), ("Total: 5€", 8), ("[ok]", 0), ("a\r\nb", 1)]
)
def test_primotexto_refuses_unlisted_characters(text: str, position: int) -> None:
    violation = _violation("primotexto", text)
    assert violation.rule == "text.charset"
    assert f"position {position} " in violation.message
    check_text("octopush", text)


def test_field_is_passed_through() -> None:
    with pytest.raises(RuleViolation) as caught:
        check_text("afilnet", "", transport="whatsapp", field="message")
    assert caught.value.field == "message"


@pytest.mark.parametrize(
    ("provider", "transport"),
    [("sinch", None), ("octopush", "v2"), ("primotexto", "whatsapp"), ("", None)],
)
def test_unknown_provider_or_transport(provider: str, transport: str | None) -> None:
    violation = _violation(provider, "hello", transport)
    assert (violation.field, violation.rule) == ("provider", "provider.unknown")


_RULES = {"text.empty", "text.charset", "text.length", "text.parts"}


@given(st.sampled_from(sorted(TEXT_LIMITS)), st.text(max_size=300) | st.just("a" * 1300))
def test_check_text_returns_the_analysis_or_names_a_text_rule(
    key: tuple[str, str], text: str
) -> None:
    provider, transport = key
    try:
        info = check_text(provider, text, transport=transport, field="body")
    except RuleViolation as violation:
        assert violation.field == "body"
        assert violation.rule in _RULES
        assert violation.message
        return
    assert info == analyze(text)
    assert text.strip()
    limit = TEXT_LIMITS[key]
    assert limit.max_characters is None or len(text) <= limit.max_characters
    assert limit.max_parts is None or info.parts <= limit.max_parts
