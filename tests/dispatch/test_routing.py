"""The choice of provider (``routing``): at enqueue, on failover, and the rate-limit account."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from postier.config import RoutingSettings, Settings
from postier.dispatch.routing import (
    SMS_PROVIDERS,
    WHATSAPP_PROVIDERS,
    account_id,
    choose_provider,
    fallback_for,
    prepare_text,
    text_policy_for,
    text_transport_for,
)
from postier.providers import registry
from postier.providers.profile import StopMention
from postier.providers.registry import providers_for
from postier.providers.results import Provider
from postier.rules.errors import RuleViolation

DEFAULTS = Settings(_env_file=None)


def routed(**routing: object) -> Settings:
    return DEFAULTS.model_copy(update={"routing": RoutingSettings.model_validate(routing)})


@pytest.mark.parametrize(
    ("channel", "category", "requested", "expected"),
    [
        ("sms", "notification", None, "primotexto"),
        ("sms", "marketing", None, "octopush"),
        ("sms", "notification", "afilnet", "afilnet"),
        ("sms", "marketing", "primotexto", "primotexto"),
        ("sms", "notification", "octopush", "octopush"),
        ("whatsapp", "notification", None, "afilnet"),
        ("whatsapp", "marketing", None, "afilnet"),
        ("whatsapp", "notification", "afilnet", "afilnet"),
    ],
)
def test_choose_provider_follows_the_default_routing_table(
    channel: str, category: str, requested: str | None, expected: str
) -> None:
    assert choose_provider(DEFAULTS, channel=channel, category=category, requested=requested) == (
        expected
    )


def test_choose_provider_follows_the_configured_routing() -> None:
    settings = routed(sms_notification="afilnet", sms_marketing="primotexto")

    assert choose_provider(settings, channel="sms", category="notification") == "afilnet"
    assert choose_provider(settings, channel="sms", category="marketing") == "primotexto"
    assert choose_provider(settings, channel="whatsapp", category="marketing") == "afilnet"


@pytest.mark.parametrize(
    ("channel", "requested"),
    [("whatsapp", "primotexto"), ("whatsapp", "octopush"), ("sms", "twilio"), ("sms", "")],
)
def test_choose_provider_refuses_a_provider_that_cannot_send_the_channel(
    channel: str, requested: str
) -> None:
    with pytest.raises(RuleViolation) as caught:
        choose_provider(DEFAULTS, channel=channel, category="notification", requested=requested)

    assert (caught.value.field, caught.value.rule) == ("provider", "provider.channel")


@pytest.mark.parametrize(
    ("provider", "tried", "expected"),
    [
        ("primotexto", ["primotexto"], "octopush"),
        ("octopush", ["octopush"], "primotexto"),
        ("octopush", ["primotexto", "octopush"], None),
        ("primotexto", ["octopush", "primotexto"], None),
        ("afilnet", ["afilnet"], None),  # the default table names no fallback for it
    ],
)
def test_fallback_for_follows_the_default_table(
    provider: str, tried: list[str], expected: str | None
) -> None:
    assert fallback_for(DEFAULTS, channel="sms", provider=provider, tried=tried) == expected


def test_whatsapp_has_no_fallback() -> None:
    settings = routed(sms_fallback={"afilnet": "primotexto"})

    assert fallback_for(settings, channel="whatsapp", provider="afilnet", tried=[]) is None
    assert fallback_for(settings, channel="sms", provider="afilnet", tried=[]) == "primotexto"


def test_a_provider_is_never_its_own_fallback() -> None:
    settings = routed(sms_fallback={"octopush": "octopush"})

    assert fallback_for(settings, channel="sms", provider="octopush", tried=[]) is None


providers = st.sampled_from(SMS_PROVIDERS)


@given(
    table=st.dictionaries(providers, providers),
    provider=providers,
    tried=st.lists(providers, max_size=3),
)
def test_fallback_for_never_returns_a_tried_provider_or_the_same_one(
    table: dict[str, str], provider: str, tried: list[str]
) -> None:
    settings = routed(sms_fallback=table)

    fallback = fallback_for(settings, channel="sms", provider=provider, tried=tried)

    assert fallback is None or (fallback not in tried and fallback != provider)
    assert fallback is None or fallback == table[provider]


@given(table=st.dictionaries(providers, providers), start=providers)
def test_failing_over_along_the_table_ends_after_each_provider_at_most_once(
    table: dict[str, str], start: str
) -> None:
    """What ``Dispatcher._give_up`` does, repeated: a cycle in the table cannot loop forever."""
    settings = routed(sms_fallback=table)
    tried: list[str] = []
    provider: str | None = start
    while provider is not None:
        tried.append(provider)
        provider = fallback_for(settings, channel="sms", provider=provider, tried=tried)

    assert len(tried) == len(set(tried)) <= len(SMS_PROVIDERS)


def test_account_id_names_each_providers_account_without_the_whole_secret() -> None:
    settings = DEFAULTS.model_copy(
        update={
            "afilnet": DEFAULTS.afilnet.model_copy(update={"user": "ops@example.fr"}),
            "octopush": DEFAULTS.octopush.model_copy(update={"login": "ops-octopush"}),
            "primotexto": DEFAULTS.primotexto.model_copy(
                update={"api_key": SecretStr("0123456789abcdef")}
            ),
        }
    )

    assert account_id(settings, "afilnet") == "ops@example.fr"
    assert account_id(settings, "octopush") == "ops-octopush"
    assert account_id(settings, "primotexto") == "abcdef"


# -- what routing reads of the providers' profiles -----------------------------------------


def test_the_channels_providers_are_the_registrys() -> None:
    assert tuple(p.value for p in providers_for("sms")) == SMS_PROVIDERS
    assert tuple(p.value for p in providers_for("whatsapp")) == WHATSAPP_PROVIDERS


def test_per_provider_answers_come_from_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    # a profile that answers differently from Afilnet's own: routing must follow it
    changed = replace(
        registry.PROFILES[Provider.AFILNET],
        account_id=lambda settings: "the-profiles-account",
        text_policy=lambda settings: "refuse",
        text_transport=lambda settings: "a-transport",
        stop_mention=lambda settings: StopMention("36222", required=True),
    )
    monkeypatch.setitem(registry._PROFILES, Provider.AFILNET, changed)

    assert account_id(DEFAULTS, "afilnet") == "the-profiles-account"
    assert text_policy_for(DEFAULTS, "afilnet") == "refuse"
    assert text_transport_for(DEFAULTS, "afilnet") == "a-transport"
    assert prepare_text(DEFAULTS, "afilnet", "Soldes", "marketing") == "Soldes\nSTOP au 36222"
    assert prepare_text(DEFAULTS, "afilnet", "Code", "notification") == "Code"


@pytest.mark.parametrize("provider", SMS_PROVIDERS)
def test_each_providers_answers_are_its_profiles(provider: str) -> None:
    profile = registry.profile_of(provider)
    settings = DEFAULTS.model_copy(
        update={"primotexto": DEFAULTS.primotexto.model_copy(update={"api_key": SecretStr("k")})}
    )

    assert account_id(settings, provider) == profile.account_id(settings)
    assert text_policy_for(settings, provider) == profile.text_policy(settings)
    assert text_transport_for(settings, provider) == profile.text_transport(settings)
    assert prepare_text(settings, provider, "Soldes", "marketing") == profile.prepare_text(
        settings, "Soldes", "marketing"
    )


def test_an_unknown_provider_gets_neutral_answers() -> None:
    assert account_id(DEFAULTS, "nobody") == ""
    assert text_policy_for(DEFAULTS, "nobody") == "unicode"
    assert text_transport_for(DEFAULTS, "nobody") is None
    assert prepare_text(DEFAULTS, "nobody", "Soldes", "marketing") == "Soldes"
