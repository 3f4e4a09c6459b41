"""Signing and verifying callback bodies: HMAC-SHA256 over ``"{timestamp}.{body}"``.

The timestamp is inside the signed text so a captured request cannot be replayed later than
``MAX_SKEW``; the body is signed as the exact bytes sent, so the receiver verifies before it
parses. Comparisons are constant-time (``hmac.compare_digest``). Standard library only: a
receiver installs Postier (or copies nothing) and imports ``postier.callbacks``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

EVENT_ID_HEADER: Final = "Postier-Event-Id"
TIMESTAMP_HEADER: Final = "Postier-Timestamp"
SIGNATURE_HEADER: Final = "Postier-Signature"
#: the only signature scheme so far; a later one gets its own prefix beside it
SCHEME: Final = "v1"
#: seconds a signed request stays acceptable, either side of the receiver's clock
MAX_SKEW: Final[float] = 300.0


class InvalidSignature(ValueError):
    """The request cannot be shown to come from Postier: refuse it (answer 400 or 401)."""


class MalformedSignature(InvalidSignature):
    """A header is missing or unreadable."""


class StaleTimestamp(InvalidSignature):
    """The timestamp is older (or further in the future) than ``MAX_SKEW`` allows."""


class SignatureMismatch(InvalidSignature):
    """No signature matches the body under any of the receiver's secrets."""


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(body: bytes, timestamp: int, secret: str | bytes) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    signed = str(int(timestamp)).encode() + b"." + body
    return hmac.new(_as_bytes(secret), signed, hashlib.sha256).hexdigest()


def signature_header(body: bytes, timestamp: int, secrets: Iterable[str | bytes]) -> str:
    """The ``Postier-Signature`` value: one ``v1=`` entry per secret (two during a rotation)."""
    entries = [f"{SCHEME}={sign(body, timestamp, secret)}" for secret in secrets if secret]
    if not entries:
        raise ValueError("no secret to sign with")
    return ", ".join(entries)


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    raise MalformedSignature(f"the {name} header is missing")


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: Iterable[str | bytes],
    *,
    now: float | None = None,
    max_skew: float = MAX_SKEW,
) -> dict[str, Any]:
    """The event in ``body`` once its signature checks out; raises ``InvalidSignature``.

    ``headers`` are the request's (any case); ``secrets`` the one or two accepted (during a
    rotation, the new and the old). Refused: a missing or malformed header, a timestamp more
    than ``max_skew`` seconds from ``now`` (default the current time) either way, or no
    ``v1`` signature matching any secret.
    """
    raw = _as_bytes(body)
    keys = [_as_bytes(secret) for secret in secrets if secret]
    if not keys:
        raise ValueError("give at least one secret to verify with")
    stamp = _header(headers, TIMESTAMP_HEADER).strip()
    if not stamp.isdigit() or len(stamp) > 12:
        raise MalformedSignature(f"{TIMESTAMP_HEADER} is not Unix seconds")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > max_skew:
        raise StaleTimestamp(
            f"{TIMESTAMP_HEADER} is {current - timestamp:+.0f} s from now; at most "
            f"{max_skew:g} s either way is accepted"
        )
    given = [
        value.strip()[len(SCHEME) + 1 :]
        for value in _header(headers, SIGNATURE_HEADER).split(",")
        if value.strip().startswith(f"{SCHEME}=")
    ]
    if not given:
        raise MalformedSignature(f"{SIGNATURE_HEADER} holds no {SCHEME}= signature")
    expected = [sign(raw, timestamp, key) for key in keys]
    # every pair is compared, so the time taken says nothing about which one matched
    matched = False
    for candidate in given:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate.encode(), wanted.encode())
    if not matched:
        raise SignatureMismatch("no signature matches this body under the accepted secrets")
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise MalformedSignature("the signed body is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedSignature("the signed body is not a JSON object")
    return event
