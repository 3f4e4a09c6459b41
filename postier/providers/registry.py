"""Every provider's ``ProviderProfile``, keyed by ``Provider``: the one place a provider is
registered (docs/ARCHITECTURE.md, "Adding a provider").

The order is routing's: the SMS providers are offered (and listed by ``postier health``) in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from postier.providers import primotexto
from postier.providers.afilnet import profile as afilnet
from postier.providers.errors import UnsupportedFeatureError
from postier.providers.octopush import profile as octopush
from postier.providers.profile import Channel, ProviderProfile
from postier.providers.results import Provider

_PROFILES: Final[dict[Provider, ProviderProfile]] = {
    profile.provider: profile for profile in (primotexto.PROFILE, octopush.PROFILE, afilnet.PROFILE)
}
#: Provider -> its profile, read-only
PROFILES: Final[Mapping[Provider, ProviderProfile]] = MappingProxyType(_PROFILES)


def find_profile(provider: str | None) -> ProviderProfile | None:
    """The profile of ``provider`` (a ``Provider`` or its name), None for a name no provider
    has."""
    if provider is None:
        return None
    try:
        return PROFILES[Provider(provider)]
    except (ValueError, KeyError):
        return None


def profile_of(provider: str) -> ProviderProfile:
    """The profile of ``provider``; raises ``UnsupportedFeatureError`` for a name no provider
    has."""
    profile = find_profile(provider)
    if profile is None:
        raise UnsupportedFeatureError(f"no provider named {provider!r}", provider=str(provider))
    return profile


def providers_for(channel: Channel) -> tuple[Provider, ...]:
    """The providers that send ``channel``, in routing order."""
    return tuple(p for p, profile in PROFILES.items() if channel in profile.channels)


def batch_max_recipients(provider: str | None) -> int | None:
    """Recipients one request of ``provider`` may carry when it batches; None: it does not
    (or no provider has that name)."""
    profile = find_profile(provider)
    return None if profile is None else profile.batch_max_recipients
