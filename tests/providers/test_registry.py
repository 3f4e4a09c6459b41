"""The providers' registry (``providers.registry``): every ``Provider`` has a profile, and each
profile is consistent with the client it builds and the code that reads it."""

from __future__ import annotations

import pytest

from postier.config import Settings
from postier.dispatch import batches
from postier.dispatch.clients import ProviderClients
from postier.providers.errors import UnsupportedFeatureError
from postier.providers.profile import ResendLookup
from postier.providers.registry import (
    PROFILES,
    batch_max_recipients,
    find_profile,
    profile_of,
    providers_for,
)
from postier.providers.results import Provider

DEFAULTS = Settings(_env_file=None)


def test_every_provider_has_a_profile_and_nothing_else_does() -> None:
    assert set(PROFILES) == set(Provider)


@pytest.mark.parametrize("provider", list(Provider))
def test_each_profile_is_filed_under_its_own_provider(provider: Provider) -> None:
    profile = PROFILES[provider]

    assert profile.provider is provider
    assert profile.channels, "a provider sends on at least one channel"
    assert all(route.provider is provider for route in profile.routes)


@pytest.mark.parametrize("provider", list(Provider))
def test_each_sms_profile_builds_a_client_of_its_own_provider(provider: Provider) -> None:
    profile = PROFILES[provider]
    if not profile.sends_sms:
        assert profile.build_sms is None
        return
    assert profile.build_sms is not None
    clients = ProviderClients(DEFAULTS)
    try:
        client = profile.build_sms(clients)
        assert client.provider is provider
    finally:
        clients.close()


def test_only_the_provider_of_the_batch_path_declares_batch_sending() -> None:
    # dispatch.batches speaks one provider's batch protocol (request_id deduplication,
    # <ticket>:<number> ids): a second batching provider needs that path generalised first
    batching = {p for p, profile in PROFILES.items() if profile.batches}

    assert batching == {batches.PROVIDER}
    assert PROFILES[batches.PROVIDER].resend_lookup is ResendLookup.SAME_REQUEST


def test_an_sms_route_and_a_whatsapp_route_match_the_channels() -> None:
    for provider, profile in PROFILES.items():
        names = {route.name for route in profile.routes}
        assert ("whatsapp" in names) == ("whatsapp" in profile.channels), provider
        assert bool(names - {"whatsapp"}) == profile.sends_sms, provider


def test_lookups_accept_names_and_members_and_refuse_unknown_names() -> None:
    assert profile_of("octopush") is PROFILES[Provider.OCTOPUSH]
    assert find_profile(Provider.AFILNET) is PROFILES[Provider.AFILNET]
    assert find_profile("nobody") is None
    assert find_profile(None) is None
    with pytest.raises(UnsupportedFeatureError, match="nobody"):
        profile_of("nobody")


def test_channels_list_their_providers_in_routing_order() -> None:
    assert providers_for("sms") == (Provider.PRIMOTEXTO, Provider.OCTOPUSH, Provider.AFILNET)
    assert providers_for("whatsapp") == (Provider.AFILNET,)


def test_batch_size_is_the_profiles_and_none_for_unknown_names() -> None:
    assert batch_max_recipients("octopush") == 500
    assert batch_max_recipients("primotexto") is None
    assert batch_max_recipients("afilnet") is None
    assert batch_max_recipients("nobody") is None
    assert batch_max_recipients(None) is None
