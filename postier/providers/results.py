"""What provider clients return: our types, with the provider's raw answer kept beside them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Provider(StrEnum):
    """The providers Postier talks to."""

    AFILNET = "afilnet"
    PRIMOTEXTO = "primotexto"
    OCTOPUSH = "octopush"


class DeliveryState(StrEnum):
    """A provider's delivery status, normalised.

    ``accepted`` and ``sent`` are not final; ``delivered`` and ``undelivered`` are.
    ``unknown`` means the provider has no record or gave a status we cannot map yet.
    """

    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in (DeliveryState.DELIVERED, DeliveryState.UNDELIVERED)


class DeliveryFailure(StrEnum):
    """Why an ``undelivered`` message was not delivered, as its provider's status tells.

    ``temporary``: the network, a handset off or out of reach, the validity expired — worth
    one more send through another provider. ``permanent``: a bad or unassigned number, a
    blacklisted or opted-out recipient — sending again cannot help. Each provider's module
    classifies its own statuses; a status it cannot classify is permanent (never resent).
    """

    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One recipient's outcome inside a multi-recipient request (Octopush)."""

    recipient: str
    accepted: bool
    cost: Decimal | None = None
    parts: int | None = None
    country_code: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The provider accepted a send.

    ``message_id`` is the provider's id for the message or the batch (Octopush ticket,
    Primotexto snapshotId, Afilnet messageid); it is what status lookups take.
    ``simulated``: the provider validated and priced the send but neither sent nor charged it
    (Octopush's simulation mode).
    """

    provider: Provider
    message_id: str | None
    cost: Decimal | None = None
    parts: int | None = None
    recipients: tuple[RecipientResult, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = False

    @property
    def provider_status(self) -> str:
        """What the ledger's event records: ``accepted``, or ``simulated`` (nothing sent)."""
        return "simulated" if self.simulated else "accepted"


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The delivery state of one message as the provider reports it."""

    provider: Provider
    message_id: str
    state: DeliveryState
    provider_status: str
    at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: with ``undelivered``: whether the cause is temporary (None: unclassified, permanent)
    failure: DeliveryFailure | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a recipient sent to us (WhatsApp chat message, SMS reply)."""

    provider: Provider
    message_id: str
    sender: str
    text: str
    received_at: datetime | None
    channel: str
    raw: Mapping[str, Any] = field(default_factory=dict)


def is_already_accepted(receipt: SendReceipt) -> bool:
    """Whether ``receipt`` answers a repeated request id (Octopush 120) rather than a new send:
    the provider deduplicated it (``ResendLookup.SAME_REQUEST``), an earlier request went out."""
    return bool(receipt.raw.get("already_accepted"))
