"""The small interface the dispatcher sees: an SMS sender with a delivery-status lookup.

Each provider module implements it over its own API; the worker never touches a provider's
payload. A feature a provider lacks raises ``UnsupportedFeatureError`` rather than being
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from postier.providers.results import Provider, SendReceipt, StatusReport

Category = Literal["notification", "marketing"]


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS text to one or more recipients (E.164 numbers, already validated)."""

    recipients: tuple[str, ...]
    text: str
    sender: str | None = None
    category: Category = "notification"
    #: deliver at this time (timezone-aware) instead of now, where the provider supports it
    send_at: datetime | None = None
    #: the provider's duplicate-detection key, where it has one (Octopush request_id)
    request_id: str | None = None
    #: grouping label for the provider's stats (Primotexto campaignName/category)
    campaign: str | None = None


@runtime_checkable
class SmsProvider(Protocol):
    """What the worker needs of an SMS provider."""

    provider: Provider

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """Send; raise a ``ProviderError`` subclass on failure."""
        ...

    def delivery_status(self, message_id: str) -> StatusReport:
        """The provider's delivery state of ``message_id`` (a send's ``SendReceipt.message_id``)."""
        ...


@runtime_checkable
class LatestStatusLookup(Protocol):
    """A provider that can tell its latest message to a number (``ResendLookup.BY_NUMBER``)."""

    def latest_status_for(self, number: str) -> StatusReport | None:
        """The state of the latest message to ``number``, None when it has none."""
        ...
