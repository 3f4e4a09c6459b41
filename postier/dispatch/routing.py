"""The choice of provider, in one place: at enqueue, and on failover."""

from __future__ import annotations

from collections.abc import Collection

from postier.config import Settings
from postier.providers.registry import find_profile, providers_for
from postier.rules.errors import RuleViolation
from postier.rules.textpolicy import TextPolicy

#: the providers of each channel, in the registry's (routing) order
SMS_PROVIDERS: tuple[str, ...] = tuple(p.value for p in providers_for("sms"))
WHATSAPP_PROVIDERS: tuple[str, ...] = tuple(p.value for p in providers_for("whatsapp"))


def choose_provider(
    settings: Settings, *, channel: str, category: str, requested: str | None = None
) -> str:
    """The provider for a new message: the one asked for, else the routing table's."""
    allowed = SMS_PROVIDERS if channel == "sms" else WHATSAPP_PROVIDERS
    if requested is not None:
        if requested not in allowed:
            raise RuleViolation(
                "provider",
                "provider.channel",
                f"{requested!r} cannot send {channel}; use one of {allowed}",
            )
        return requested
    if channel == "whatsapp":
        return WHATSAPP_PROVIDERS[0]
    routing = settings.routing
    return routing.sms_marketing if category == "marketing" else routing.sms_notification


def fallback_for(
    settings: Settings, *, channel: str, provider: str, tried: Collection[str]
) -> str | None:
    """The provider to fail over to, or None when the routing names none left to try."""
    if channel != "sms":
        return None
    candidate = settings.routing.sms_fallback.get(provider)
    if candidate is None or candidate in tried or candidate == provider:
        return None
    return candidate


def account_id(settings: Settings, provider: str) -> str:
    """The provider account a rate limit applies to (hashed by the limiter before use)."""
    profile = find_profile(provider)
    return "" if profile is None else profile.account_id(settings)


def text_policy_for(settings: Settings, provider: str) -> TextPolicy:
    """What ``provider``'s SMS route does with characters outside its alphabet."""
    profile = find_profile(provider)
    return "unicode" if profile is None else profile.text_policy(settings)


def text_transport_for(settings: Settings, provider: str) -> str | None:
    """The API variant of ``provider`` whose text limits apply (None: its default)."""
    profile = find_profile(provider)
    return None if profile is None else profile.text_transport(settings)


def prepare_text(settings: Settings, provider: str, text: str, category: str) -> str:
    """``text`` as ``provider``'s route must receive it (``ProviderProfile.prepare_text``:
    the STOP mention on marketing where the provider refuses marketing without it)."""
    profile = find_profile(provider)
    return text if profile is None else profile.prepare_text(settings, text, category)


def health_fallback_for(
    settings: Settings, *, channel: str, category: str, provider: str, tried: Collection[str]
) -> str | None:
    """Where a message goes while ``provider`` is unhealthy, or None: it waits instead.

    The failover fallback, except that marketing is not moved onto the notification route
    (the default SMS provider, where one-time codes go) unless ``health.reroute_marketing``.
    """
    fallback = fallback_for(settings, channel=channel, provider=provider, tried=tried)
    if (
        fallback is not None
        and category == "marketing"
        and fallback == settings.routing.sms_notification
        and not settings.health.reroute_marketing
    ):
        return None
    return fallback
