"""What the dispatcher and campaigns need to know of a provider, described in one value.

Each provider module declares one ``ProviderProfile`` next to its client (``PROFILE``), and
``postier.providers.registry`` keys them by ``Provider``. Dispatch and campaigns ask the
profile (which channels, batch sending, the lookup before a resend, how a marketing text is
prepared, the text policy, the account, the balance call) instead of comparing provider names,
so adding a provider is its client module, its sandbox module and a registry entry
(docs/ARCHITECTURE.md, "Adding a provider").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol, TypeVar

import httpx

from postier.config import Settings
from postier.providers.base import SmsProvider
from postier.providers.results import Provider
from postier.rules.stop import add_stop_mention
from postier.rules.textpolicy import TextPolicy

T = TypeVar("T")

Channel = Literal["sms", "whatsapp"]
#: what a route does with a marketing text's opt-out mention: adds it itself (``add``), needs
#: the author to write one (``require``), or takes none (``none``: not marketing, or a WhatsApp
#: template whose opt-out Meta approved with it)
StopPolicy = Literal["add", "require", "none"]


class ClientContext(Protocol):
    """What a provider's client factory is given: the settings, the process's HTTP connection
    pool, and a per-process cache for an object several clients share (Afilnet's API)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def http(self) -> httpx.BaseTransport: ...

    def shared(self, key: type[T], build: Callable[[], T]) -> T:
        """The one ``key`` object of this process, built by ``build`` on first use."""
        ...


class ResendLookup(StrEnum):
    """How a sent SMS whose outcome is unknown is settled before it may be sent again."""

    #: send the same request again: the provider deduplicates our request id and answers a
    #: repeat as already accepted (``results.is_already_accepted``)
    SAME_REQUEST = "same_request"
    #: the provider's latest message to the number (``base.LatestStatusLookup``)
    BY_NUMBER = "by_number"
    #: no lookup can tell: ``dispatch.ambiguous_policy`` decides (hold or resend)
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Route:
    """One way into a provider: whether it takes marketing, and its opt-out rule for it."""

    provider: Provider
    name: str
    marketing: bool
    stop: StopPolicy
    source: str


@dataclass(frozen=True, slots=True)
class StopMention:
    """The « STOP au <short code> » mention a provider's route adds to marketing."""

    short_code: str
    #: the provider refuses marketing without it (so every send adds it, not only campaigns)
    required: bool


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """One provider's capabilities and per-provider behaviour, read by dispatch and campaigns."""

    provider: Provider
    #: the channels it sends; routing offers it only for these
    channels: frozenset[Channel]
    #: its routes (campaigns' compliance table); a route named after a category is that
    #: category's default, else the route named after the channel
    routes: tuple[Route, ...]
    #: recipients one multi-recipient request may carry; None: one request per message
    batch_max_recipients: int | None
    #: how an ``unknown`` SMS is settled before any resend
    resend_lookup: ResendLookup
    #: builds its SMS client (None: it sends no SMS)
    build_sms: Callable[[ClientContext], SmsProvider] | None
    #: the account a rate limit and the health state apply to (hashed before use)
    account_id: Callable[[Settings], str]
    #: what its SMS route does with characters outside its alphabet
    text_policy: Callable[[Settings], TextPolicy]
    #: the API variant whose text limits apply (``rules.limits``); None: the provider's default
    text_transport: Callable[[Settings], str | None]
    #: the STOP mention its route adds to marketing, None when it adds none
    stop_mention: Callable[[Settings], StopMention | None]
    #: the account's balance by unit, read by a call that sends nothing
    balance: Callable[[SmsProvider], Mapping[str, Decimal | None]]
    #: the one figure a low-funds alert compares, ``(unit, amount)``; None: the only amount
    #: ``balance`` states, in credits
    funds: Callable[[SmsProvider], tuple[str, Decimal]] | None = None

    @property
    def sends_sms(self) -> bool:
        return "sms" in self.channels

    @property
    def batches(self) -> bool:
        """Whether messages sharing a text may go as one multi-recipient request."""
        return self.batch_max_recipients is not None

    def read_funds(self, client: SmsProvider) -> tuple[str, Decimal]:
        """``(unit, amount)`` of the account, by a call that sends nothing."""
        if self.funds is not None:
            return self.funds(client)
        amounts = [amount for amount in self.balance(client).values() if amount is not None]
        if len(amounts) != 1:
            raise ValueError(f"{self.provider} stated {len(amounts)} balances, not one")
        return "credits", amounts[0]

    def prepare_text(self, settings: Settings, text: str, category: str) -> str:
        """``text`` as this provider's route must receive it: marketing gets the STOP mention
        where the provider refuses marketing without one; anything else is left as it is."""
        if category != "marketing" or not text.strip():
            return text
        mention = self.stop_mention(settings)
        if mention is None or not mention.required:
            return text
        return add_stop_mention(text, mention.short_code)


def no_stop_mention(settings: Settings) -> StopMention | None:
    """For a route that adds no mention (the author writes one, or the channel needs none)."""
    return None
