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
from types import MappingProxyType
from typing import Final

from postier.config import Settings
from postier.providers.profile import Route, StopPolicy
from postier.providers.registry import PROFILES
from postier.rules.errors import RuleViolation
from postier.rules.stop import add_stop_mention

__all__ = ["ROUTES", "Route", "StopPolicy", "marketing_text", "route_for"]

#: an opt-out instruction a person can act on: « STOP au 36111 », « STOP SMS au … »
_STOP_WORD: Final = re.compile(r"\bSTOP\b")

#: (provider, route name) -> route, from every provider's profile (``ProviderProfile.routes``)
ROUTES: Final[Mapping[tuple[str, str], Route]] = MappingProxyType(
    {(route.provider, route.name): route for p in PROFILES.values() for route in p.routes}
)


#: the provider named in the hint when a route refuses marketing: the first whose SMS route
#: adds the opt-out mention itself
_MARKETING_EXAMPLE: Final = next(
    str(route.provider)
    for route in ROUTES.values()
    if route.marketing and route.stop == "add" and route.name != "whatsapp"
)


def route_for(provider: str, channel: str, category: str, requested: str | None) -> Route:
    """The route a campaign takes; ``requested`` names one of the provider's routes.

    Raises ``RuleViolation``: ``route.unknown`` for a route the provider lacks,
    ``route.marketing_forbidden`` for marketing on a notification-only route.
    """
    if channel != "sms":
        default = "whatsapp"
    elif (provider, category) in ROUTES:
        default = category  # a provider with a route per category (Primotexto)
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
            f" marketing through a marketing route (e.g. --provider {_MARKETING_EXAMPLE})",
        )
    return route


def marketing_text(settings: Settings, route: Route, text: str) -> str:
    """``text`` as the route demands for marketing: the STOP mention added or required.

    A route that adds the mention appends the one its provider's profile names
    (``ProviderProfile.stop_mention``), when absent; Octopush's low-cost type (XXX) names none
    (the Octopush docs name the premium type), every other Octopush type « STOP au
    <stop_short_code> ».
    """
    if route.stop == "add":
        mention = PROFILES[route.provider].stop_mention(settings)
        if mention is None:
            return text
        return add_stop_mention(text, mention.short_code)
    if route.stop == "require" and not _STOP_WORD.search(text):
        raise RuleViolation(
            "text",
            "text.stop_mention",
            f"a marketing SMS through {route.provider} must say how to opt out"
            " (write e.g. 'STOP au 36xxx' with your short code)",
        )
    return text
