"""Phone numbers: input forms accepted, refused, and the E.164 helpers."""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postier.rules import (
    RuleViolation,
    is_mobile,
    mask_number,
    normalize_number,
    number_type,
    to_international_digits,
)
from postier.rules import phones as _phones
from postier.rules.inputs import check_string
from postier.rules.phones import plain_french_mobile

E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("  0612345678\t", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("+330612345678", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("00 33 6 12 34 56 78", "+33612345678"),
        ("612345678", "+33612345678"),
        ("0751234567", "+33751234567"),
        ("0123456789", "+33123456789"),
        ("+33600000000", "+33600000000"),
        # overseas departments dialled nationally from France
        ("0692123456", "+262692123456"),
        ("0262161234", "+262262161234"),
        ("0690001234", "+590690001234"),
        # other countries, written internationally
        ("+32 450 00 12 34", "+32450001234"),
        ("+44 7400 123456", "+447400123456"),
        ("0044 7400 123456", "+447400123456"),
        ("+1 (201) 555-0123", "+12015550123"),
        ("+39 02 1234 5678", "+390212345678"),
    ],
)
def test_normalize_number_accepts(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0450 00 12 34", "BE", "+32450001234"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("07400 123456", "GB", "+447400123456"),
        ("+33612345678", "GB", "+33612345678"),
    ],
)
def test_normalize_number_in_other_regions(raw: str, region: str, expected: str) -> None:
    assert normalize_number(raw, region=region) == expected


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "e164.empty"),
        ("   ", "e164.empty"),
        ("abc", "e164.characters"),
        ("06 12 34 56 78 ext 1", "e164.characters"),
        ("1-800-FLOWERS", "e164.characters"),
        ("++33612345678", "e164.characters"),
        ("06+12345678", "e164.characters"),
        ("０６１２３４５６７８", "e164.characters"),
        ("06_12_34_56_78", "e164.characters"),
        ("33612345678", "e164.prefix"),
        ("0612", "e164.impossible"),
        ("+3361234567", "e164.impossible"),
        ("061234567890", "e164.impossible"),
        ("+", "e164.characters"),
        ("()", "e164.unparsable"),
        ("+1 555 555 5555", "e164.invalid"),
        ("0012345678", "e164.invalid"),
        ("+33012345678", "e164.invalid"),
        ("+999612345678", "e164.unparsable"),
    ],
)
def test_normalize_number_refuses(raw: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        normalize_number(raw)
    assert caught.value.rule == rule
    assert caught.value.field == "recipient"


def test_violation_names_the_given_field_and_hides_the_number() -> None:
    with pytest.raises(RuleViolation) as caught:
        normalize_number("+3361234567", field="recipients[3]")
    assert caught.value.field == "recipients[3]"
    assert "61234567" not in str(caught.value)


@pytest.mark.parametrize(
    ("e164", "kind"),
    [
        ("+33612345678", "mobile"),
        ("+33751234567", "mobile"),
        ("+33123456789", "fixed_line"),
        ("+33800123456", "toll_free"),
        ("+33912345678", "voip"),
        ("+12015550123", "fixed_line_or_mobile"),
        ("+447400123456", "mobile"),
        ("+33012345678", "unknown"),
    ],
)
def test_number_type(e164: str, kind: str) -> None:
    assert number_type(e164) == kind


@pytest.mark.parametrize(
    ("e164", "mobile"),
    [
        ("+33612345678", True),
        ("+262692123456", True),
        ("+12015550123", True),
        ("+33123456789", False),
        ("+33800123456", False),
    ],
)
def test_is_mobile(e164: str, mobile: bool) -> None:
    assert is_mobile(e164) is mobile


@pytest.mark.parametrize("bad", ["0612345678", "33612345678", "+33 6 12 34 56 78", "", "+0612"])
def test_e164_helpers_refuse_non_e164(bad: str) -> None:
    for helper in (number_type, is_mobile, to_international_digits):
        with pytest.raises(RuleViolation) as caught:
            helper(bad)
        assert caught.value.rule == "e164.format"


@pytest.mark.parametrize(
    ("e164", "digits"),
    [("+33612345678", "33612345678"), ("+262692123456", "262692123456")],
)
def test_to_international_digits(e164: str, digits: str) -> None:
    assert to_international_digits(e164) == digits


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+33612345678", "+336******78"),
        ("+262692123456", "+2626******56"),
        ("+12015550123", "+12*******23"),
        ("+447400123456", "+447*******56"),
        ("+390212345678", "+390*******78"),
        ("+3312345", "+33*****"),
        ("+999612345678", "+************"),
        ("0612345678", "**********"),
        ("", ""),
    ],
)
def test_mask_number(e164: str, masked: str) -> None:
    assert mask_number(e164) == masked


# -- properties -----------------------------------------------------------------------------

_digits = st.text(alphabet="0123456789", min_size=1, max_size=14)
_french_national = st.builds(
    lambda first, rest: f"0{first}{rest}",
    st.sampled_from("1234567869"),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)
_international = st.builds(
    lambda prefix, code, rest: f"{prefix}{code}{rest}",
    st.sampled_from(["+", "00", "+ ", "00 "]),
    st.sampled_from(["33", "32", "44", "1", "49", "262", "590", "41", "212"]),
    _digits,
)
_typed = st.text(alphabet="0123456789 +-.()/", max_size=20)
_phone_like = st.one_of(_french_national, _international, _typed, st.text(max_size=20))


@settings(deadline=None)
@given(_phone_like)
def test_normalize_number_is_idempotent_on_its_output(raw: str) -> None:
    try:
        e164 = normalize_number(raw)
    except RuleViolation as violation:
        assert violation.field == "recipient"
        assert violation.rule.startswith("e164.")
        return
    assert E164.fullmatch(e164)
    assert normalize_number(e164) == e164
    assert phonenumbers.is_valid_number(phonenumbers.parse(e164))
    assert to_international_digits(e164) == e164[1:]


@settings(deadline=None)
@given(_phone_like)
def test_national_and_international_forms_agree(raw: str) -> None:
    try:
        e164 = normalize_number(raw)
    except RuleViolation:
        return
    assert normalize_number("00" + e164[1:]) == e164


@settings(deadline=None)
@given(st.one_of(_french_national, _international, st.text(max_size=20)))
def test_mask_number_reveals_at_most_three_subscriber_digits(raw: str) -> None:
    try:
        e164 = normalize_number(raw)
    except RuleViolation:
        e164 = raw
    masked = mask_number(e164)
    assert len(masked) == len(e164)
    if not E164.fullmatch(e164):
        assert set(masked) <= {"*"}
        return
    try:
        country = str(phonenumbers.parse(e164).country_code)
    except phonenumbers.NumberParseException:
        assert masked == "+" + "*" * (len(e164) - 1)
        return
    assert masked.startswith("+" + country)
    subscriber = masked[1 + len(country) :]
    assert sum(char.isdigit() for char in subscriber) <= 3
    for shown, original in zip(subscriber, e164[1 + len(country) :], strict=True):
        assert shown in ("*", original)


# -- the fast path for plainly written French mobiles gives libphonenumber's answer -----------


def _outcome(call: Callable[[], str]) -> str:
    try:
        return call()
    except RuleViolation as exc:
        return f"refused: {exc.rule}"


@given(
    prefix=st.sampled_from(["+33", "0033", "0", "+33 ", "+", "00", ""]),
    digits=st.text(alphabet="0123456789", min_size=8, max_size=10),
    lead=st.sampled_from(["6", "7", "1", "9", "0", ""]),
    region=st.sampled_from(["FR", "BE", "US"]),
)
def test_the_fast_path_agrees_with_libphonenumber(
    prefix: str, digits: str, lead: str, region: str
) -> None:
    text = prefix + lead + digits
    fast = _outcome(lambda: normalize_number(text, region=region, field="to"))
    full = _outcome(lambda: _phones._normalize_with_libphonenumber(text, region, "to"))
    assert fast == full, text


@given(
    prefix=st.sampled_from(["+33", "0033", "0", "+33 ", " 0", "+", "00", "", "０"]),
    digits=st.text(alphabet="0123456789٣", min_size=8, max_size=10),
    lead=st.sampled_from(["6", "7", "1", "9", "0", ""]),
    tail=st.sampled_from(["", " ", "\n", "\x00"]),
    region=st.sampled_from(["FR", "BE", "US"]),
)
def test_a_plain_mobile_taken_before_the_string_checks_is_what_they_would_give(
    prefix: str, digits: str, lead: str, tail: str, region: str
) -> None:
    """A producer tries ``plain_french_mobile`` on the raw value before ``check_string``:
    what it takes must pass the string checks and normalise to the same number."""
    text = prefix + lead + digits + tail
    fast = plain_french_mobile(text, region)
    if fast is not None:
        assert check_string(text, field="to", max_chars=64) == text
        assert fast == _phones._normalize_with_libphonenumber(text, region, "to")
        assert fast == normalize_number(text, region=region, field="to")


def test_plainly_written_mobiles_take_the_plain_path() -> None:
    for text in ("+33612345678", "0612345678", "0033612345679", "0756789012"):
        assert plain_french_mobile(text) == "+33" + text[-9:]
    assert plain_french_mobile("0612345678", "BE") is None
    assert plain_french_mobile("+33612345678", "BE") == "+33612345678"
    for text in ("06 12 34 56 78", "+33612345678\n", "0512345678", "06123456789", "+336١٢٣٤٥٦٧٨"):
        assert plain_french_mobile(text) is None


@pytest.mark.parametrize(
    "text",
    ["+33612345678", "0612345678", "0033712345678", "+33739000000", "0639000000", "0700000000"],
)
def test_the_fast_path_agrees_on_the_edges_of_the_mobile_ranges(text: str) -> None:
    fast = _outcome(lambda: normalize_number(text, field="to"))
    full = _outcome(lambda: _phones._normalize_with_libphonenumber(text, "FR", "to"))
    assert fast == full


def test_a_number_longer_than_e164_allows_is_refused() -> None:
    """libphonenumber calls this German number valid; E.164 caps numbers at 15 digits."""
    with pytest.raises(RuleViolation) as caught:
        normalize_number("+4920100000000000")
    assert caught.value.rule == "e164.impossible"


@given(st.integers(min_value=600000000, max_value=799999999))
def test_number_hash_is_keyed_fixed_length_and_hides_the_number(national: int) -> None:
    from postier.rules.phones import HASH_PREFIX, number_hash

    e164 = f"+33{national}"
    digest = number_hash(e164, "a-key-of-16-char")
    assert digest == number_hash(e164, "a-key-of-16-char")
    assert digest != number_hash(e164, "another-key-16ch")
    assert digest != number_hash(f"+33{national + 1}", "a-key-of-16-char")
    assert re.fullmatch(HASH_PREFIX + r"[0-9a-f]{30}", digest)
    assert str(national) not in digest
