"""The verifier Postier ships for Python receivers: signature, rotation, staleness, tampering."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.callbacks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    MalformedSignature,
    SignatureMismatch,
    StaleTimestamp,
    sign,
    signature_header,
    verify,
)

SECRET = "s3cret-callbacks-key-0001"
OLD = "old-callbacks-key-000000"
NOW = 1_800_000_000
BODY = json.dumps({"event_id": "e1", "status": "delivered", "sequence": 2}).encode()


def headers(body: bytes = BODY, timestamp: int = NOW, *secrets: str) -> dict[str, str]:
    return {
        EVENT_ID_HEADER: "e1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(body, timestamp, secrets or (SECRET,)),
    }


def test_a_signed_body_verifies_and_is_returned_parsed() -> None:
    assert verify(BODY, headers(), [SECRET], now=NOW) == json.loads(BODY)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, NOW, SECRET) == expected
    assert headers()[SIGNATURE_HEADER] == f"v1={expected}"


def test_header_names_are_read_in_any_case() -> None:
    lowered = {key.lower(): value for key, value in headers().items()}
    assert verify(BODY, lowered, [SECRET], now=NOW)["event_id"] == "e1"


def test_rotation_either_secret_is_accepted_both_ways() -> None:
    both = headers(BODY, NOW, SECRET, OLD)
    assert both[SIGNATURE_HEADER].count("v1=") == 2
    assert verify(BODY, both, [SECRET], now=NOW)  # receiver already on the new secret
    assert verify(BODY, both, [OLD], now=NOW)  # receiver still on the old one
    assert verify(BODY, headers(BODY, NOW, OLD), [SECRET, OLD], now=NOW)


def test_a_wrong_secret_fails() -> None:
    with pytest.raises(SignatureMismatch):
        verify(BODY, headers(), ["another-secret-entirely"], now=NOW)


@pytest.mark.parametrize("skew", [301, -301, 3600, -86400])
def test_timestamps_more_than_five_minutes_away_are_refused(skew: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(BODY, headers(BODY, NOW + skew), [SECRET], now=NOW)


@pytest.mark.parametrize("skew", [0, 299, -299])
def test_timestamps_within_five_minutes_are_accepted(skew: int) -> None:
    assert verify(BODY, headers(BODY, NOW + skew), [SECRET], now=NOW)


@pytest.mark.parametrize(
    "broken",
    [
        {TIMESTAMP_HEADER: None},
        {SIGNATURE_HEADER: None},
        {TIMESTAMP_HEADER: "yesterday"},
        {TIMESTAMP_HEADER: "-5"},
        {SIGNATURE_HEADER: "sha1=abc"},
        {SIGNATURE_HEADER: ""},
    ],
)
def test_missing_or_malformed_headers_are_refused(broken: dict[str, str | None]) -> None:
    given_headers: dict[str, str] = dict(headers())
    for key, value in broken.items():
        if value is None:
            del given_headers[key]
        else:
            given_headers[key] = value
    with pytest.raises(MalformedSignature):
        verify(BODY, given_headers, [SECRET], now=NOW)


def test_every_refusal_is_an_invalid_signature() -> None:
    for error in (MalformedSignature, StaleTimestamp, SignatureMismatch):
        assert issubclass(error, InvalidSignature)


def test_no_secret_to_verify_with_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        verify(BODY, headers(), [], now=NOW)


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=10_000))
def test_any_change_to_the_body_fails(extra: bytes, position: int) -> None:
    at = position % (len(BODY) + 1)
    tampered = BODY[:at] + extra + BODY[at:]
    with pytest.raises(InvalidSignature):
        verify(tampered, headers(), [SECRET], now=NOW)


@given(st.integers(min_value=0, max_value=len(BODY) - 1), st.integers(1, 255))
def test_any_flipped_byte_fails(position: int, flip: int) -> None:
    tampered = bytearray(BODY)
    tampered[position] ^= flip
    with pytest.raises(InvalidSignature):
        verify(bytes(tampered), headers(), [SECRET], now=NOW)


@given(st.integers(min_value=1, max_value=299))
def test_a_replayed_signature_under_another_timestamp_fails(shift: int) -> None:
    signed = headers()
    moved = {**signed, TIMESTAMP_HEADER: str(NOW + shift)}
    with pytest.raises(SignatureMismatch):
        verify(BODY, moved, [SECRET], now=NOW)


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_a_forged_signature_fails(forged: str) -> None:
    forged_headers = {**headers(), SIGNATURE_HEADER: f"v1={forged}"}
    if forged == sign(BODY, NOW, SECRET):  # pragma: no cover (a 2**-256 chance)
        return
    with pytest.raises(SignatureMismatch):
        verify(BODY, forged_headers, [SECRET], now=NOW)
