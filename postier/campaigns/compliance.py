"""The routes a campaign can take, and what each demands of marketing (one table).

A route is a provider's way in: Primotexto has two (the notification API, on which
marketing is « STRICTEMENT INTERDIT », and the marketing one, docs/PROVIDERS.md), Octopush and
Afilnet SMS one each, Afilnet WhatsApp one. For marketing, each route either adds the opt-out
mention itself (``add``), needs the author to write one (``require``), or takes none
(``none``: not marketing, or a WhatsApp template whose opt-out Meta approved with it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from postier.config import Settings
from postier.rules.errors import RuleViolation
from postier.rules.stop import add_stop_mention

StopPolicy = Literal["add", "require", "none"]

#: an opt-out instruction a person can act on: « STOP au 36111 », « STOP SMS au … »
_STOP_WORD: Final = re.compile(r"\bSTOP\b")


@dataclass(frozen=True, slots=True)
class Route:
    """One provider route: whether it takes marketing, and its opt-out rule for marketing."""

    provider: str
    name: str
    marketing: bool
    stop: StopPolicy
    source: str


_ROUTES: Final = (
    Route(
        "primotexto",
        "notification",
        marketing=False,
        stop="none",
        source="Primotexto API: « LES MESSAGES A CARACTERE MARKETING SONT STRICTEMENT"
        " INTERDITS ICI »",
    ),
    Route(
        "primotexto",
        "marketing",
        marketing=True,
        stop="require",
        source="Primotexto API (/v2/marketing/messages/send); whether Primotexto appends a"
        " mention itself is unconfirmed, so the text must carry one",
    ),
    Route(
        "octopush",
        "sms",
        marketing=True,
        stop="add",
        source="Octopush API: a French premium text without « STOP au XXXXX » is error 121",
    ),
    Route(
        "afilnet",
        "sms",
        marketing=True,
        stop="require",
        source="unconfirmed: no Afilnet document on marketing SMS; French rules want a free"
        " opt-out in every marketing SMS",
    ),
    Route(
        "afilnet",
        "whatsapp",
        marketing=True,
        stop="none",
        source="Afilnet API: templates are approved with their own wording",
    ),
)

#: (provider, route name) -> route
ROUTES: Final[Mapping[tuple[str, str], Route]] = MappingProxyType(
    {(route.provider, route.name): route for route in _ROUTES}
)


def route_for(provider: str, channel: str, category: str, requested: str | None) -> Route:
    """The route a campaign takes; ``requested`` names one of the provider's routes.

    Raises ``RuleViolation``: ``route.unknown`` for a route the provider lacks,
    ``route.marketing_forbidden`` for marketing on a notification-only route.
    """
    if channel != "sms":
        default = "whatsapp"
    elif provider == "primotexto":
        default = category
    else:
        default = "sms"
    name = requested or default
    route = ROUTES.get((provider, name))
    if route is None or (channel == "sms") == (name == "whatsapp"):
        known = sorted(n for p, n in ROUTES if p == provider)
        raise RuleViolation(
            "route",
            "route.unknown",
            f"{provider} has no {name!r} route for {channel} (its routes: {', '.join(known)})",
        )
    if category == "marketing" and not route.marketing:
        raise RuleViolation(
            "category",
            "route.marketing_forbidden",
            f"{provider}'s {name} route refuses marketing campaigns ({route.source}); send"
            f" marketing through a marketing route (e.g. --provider octopush)",
        )
    return route


def marketing_text(settings: Settings, route: Route, text: str) -> str:
    """``text`` as the route demands for marketing: the STOP mention added or required.

    Octopush's low-cost type (XXX) demands no mention (the Octopush docs name the premium type);
    every other Octopush type gets « STOP au <stop_short_code> » appended when absent.
    """
    if route.stop == "add":
        if settings.octopush.sms_type == "XXX":
            return text
        return add_stop_mention(text, settings.octopush.stop_short_code)
    if route.stop == "require" and not _STOP_WORD.search(text):
        raise RuleViolation(
            "text",
            "text.stop_mention",
            f"a marketing SMS through {route.provider} must say how to opt out"
            " (write e.g. 'STOP au 36xxx' with your short code)",
        )
    return text
