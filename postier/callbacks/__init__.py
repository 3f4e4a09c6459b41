"""Status callbacks, the receiver's side: check that an event really comes from Postier.

Postier POSTs each event as JSON with three headers (docs/ARCHITECTURE.md, "Status
callbacks")::

    Postier-Event-Id:   the event's id, the same on every retry (deduplicate on it)
    Postier-Timestamp:  Unix seconds when this attempt was signed
    Postier-Signature:  v1=<hex HMAC-SHA256 of "{timestamp}.{body}">[, v1=<hex>]

A receiver written in Python checks them with ``verify``; it needs nothing of Postier but
this module (standard library only)::

    from postier.callbacks import verify, InvalidSignature

    try:
        event = verify(body, request.headers, secrets=["<callbacks.secret>"])
    except InvalidSignature:
        return 400

During a rotation Postier signs with both its secrets (two ``v1=`` entries) and a receiver
may accept either of its own two: pass both in ``secrets``.
"""

from postier.callbacks.signing import (
    EVENT_ID_HEADER,
    MAX_SKEW,
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

__all__ = [
    "EVENT_ID_HEADER",
    "MAX_SKEW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InvalidSignature",
    "MalformedSignature",
    "SignatureMismatch",
    "StaleTimestamp",
    "sign",
    "signature_header",
    "verify",
]
