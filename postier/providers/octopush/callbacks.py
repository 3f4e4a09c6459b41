"""Bodies Octopush POSTs to our callback URLs: delivery receipts and inbound SMS (v1 shape).

Octopush has no API to pull a message's status: it pushes receipts to a URL set in the
account (docs/PROVIDERS.md, "Octopush"), and the dispatcher's webhook hands the bodies to these
parsers. Receipt: ``message_id``, ``number``, ``status``, ``delivery_date``. Inbound:
``message_id``, ``number``, ``text``, ``reception_date``. The date format is unconfirmed: ISO
8601 is read as given, a date without offset is taken as UTC, a number as Unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from postier.providers.results import (
    DeliveryFailure,
    DeliveryState,
    InboundMessage,
    Provider,
    StatusReport,
)

#: v1 receipt status -> our state (docs/PROVIDERS.md, "Octopush"); anything else is UNKNOWN
RECEIPT_STATES: Final[dict[str, DeliveryState]] = {
    "ACK": DeliveryState.SENT,
    "DELIVERED": DeliveryState.DELIVERED,
    "NOT_DELIVERED": DeliveryState.UNDELIVERED,
    "BAD_DESTINATION": DeliveryState.UNDELIVERED,
    "BLACKLISTED_NUMBER": DeliveryState.UNDELIVERED,
    "NOT_ALLOWED": DeliveryState.UNDELIVERED,
    "UNKNOWN_DELIVERY": DeliveryState.UNKNOWN,
    "UNDEFINED": DeliveryState.UNKNOWN,
}

#: why an undelivered receipt failed (docs/PROVIDERS.md, "Octopush"): ``NOT_DELIVERED`` is the
#: operator's generic non-delivery (handset off or out of reach, validity expired); the others
#: name the recipient (invalid number, Octopush's blacklist, a destination the account may not
#: reach)
RECEIPT_FAILURES: Final[dict[str, DeliveryFailure]] = {
    "NOT_DELIVERED": DeliveryFailure.TEMPORARY,
    "BAD_DESTINATION": DeliveryFailure.PERMANENT,
    "BLACKLISTED_NUMBER": DeliveryFailure.PERMANENT,
    "NOT_ALLOWED": DeliveryFailure.PERMANENT,
}


def parse_callback_date(value: Any) -> datetime | None:
    """A callback date as an aware datetime, None when absent or unreadable."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):  # not a date, or out of the calendar
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _required(body: Mapping[str, Any], *names: str) -> list[str]:
    missing = [name for name in names if body.get(name) in (None, "")]
    if missing:
        raise ValueError(f"Octopush callback body without {', '.join(missing)}")
    return [str(body[name]) for name in names]


def parse_receipt(body: Mapping[str, Any]) -> StatusReport:
    """Our ``StatusReport`` for a delivery-receipt callback body; ValueError if it is not one."""
    message_id, status = _required(body, "message_id", "status")
    return StatusReport(
        provider=Provider.OCTOPUSH,
        message_id=message_id,
        state=RECEIPT_STATES.get(status.upper(), DeliveryState.UNKNOWN),
        provider_status=status,
        at=parse_callback_date(body.get("delivery_date")),
        raw=dict(body),
        failure=RECEIPT_FAILURES.get(status.upper()),
    )


def parse_inbound(body: Mapping[str, Any]) -> InboundMessage:
    """Our ``InboundMessage`` for an inbound-SMS callback body; ValueError if it is not one."""
    message_id, number = _required(body, "message_id", "number")
    return InboundMessage(
        provider=Provider.OCTOPUSH,
        message_id=message_id,
        sender=number,
        text=str(body.get("text") or ""),
        received_at=parse_callback_date(body.get("reception_date")),
        channel="sms",
        raw=dict(body),
    )
