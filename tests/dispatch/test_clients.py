"""``ProviderClients``: SMS clients built by the providers' profiles, once per process."""

from __future__ import annotations

from dataclasses import replace

import pytest

from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.providers import registry
from postier.providers.afilnet import AfilnetSms
from postier.providers.base import SmsProvider
from postier.providers.errors import UnsupportedFeatureError
from postier.providers.profile import ClientContext
from postier.providers.results import Provider

DEFAULTS = Settings(_env_file=None)


@pytest.fixture
def clients() -> ProviderClients:
    return ProviderClients(DEFAULTS)


@pytest.mark.parametrize("provider", [p for p in Provider if registry.PROFILES[p].sends_sms])
def test_each_sms_client_is_its_profiles_built_once(
    clients: ProviderClients, provider: Provider
) -> None:
    client = clients.sms(provider.value)

    assert client.provider is provider
    assert clients.sms(provider) is client


def test_the_client_comes_from_the_profiles_factory(
    clients: ProviderClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ClientContext] = []
    real = registry.PROFILES[Provider.OCTOPUSH].build_sms
    assert real is not None

    def factory(ctx: ClientContext) -> SmsProvider:
        built.append(ctx)
        return real(ctx)

    monkeypatch.setitem(
        registry._PROFILES,
        Provider.OCTOPUSH,
        replace(registry.PROFILES[Provider.OCTOPUSH], build_sms=factory),
    )
    client = clients.sms("octopush")

    assert built == [clients]
    assert clients.octopush is client


def test_a_provider_without_sms_or_an_unknown_name_is_refused(
    clients: ProviderClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UnsupportedFeatureError, match="nobody"):
        clients.sms("nobody")
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.AFILNET,
        replace(registry.PROFILES[Provider.AFILNET], build_sms=None),
    )
    with pytest.raises(UnsupportedFeatureError, match="no SMS client"):
        clients.sms("afilnet")


def test_afilnet_sms_and_whatsapp_share_one_endpoint_client(clients: ProviderClients) -> None:
    sms = clients.sms("afilnet")

    assert isinstance(sms, AfilnetSms)
    assert sms.api is clients.afilnet_api is clients.whatsapp.api
    assert clients.afilnet_sms is sms
