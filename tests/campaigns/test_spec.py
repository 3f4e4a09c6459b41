"""What a campaign sends, checked at creation: routes, marketing rules, placeholders."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from postier.campaigns.compliance import ROUTES, route_for
from postier.campaigns.spec import CampaignRequest, check_name, resolve_spec
from postier.config import Settings
from postier.providers import registry
from postier.providers.profile import StopMention
from postier.providers.results import Provider
from postier.rules.errors import RuleViolation


def refused(settings: Settings, **request: object) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        resolve_spec(settings, CampaignRequest(**request))  # type: ignore[arg-type]
    return caught.value


def test_marketing_on_primotexto_notification_route_is_refused_clearly(settings: Settings) -> None:
    error = refused(
        settings, text="Soldes ! STOP au 36111", provider="primotexto", route="notification"
    )
    assert (error.field, error.rule) == ("category", "route.marketing_forbidden")
    assert "primotexto's notification route refuses marketing" in str(error)
    assert "STRICTEMENT INTERDITS" in str(error)
    # the same text as a notification is fine there
    spec = resolve_spec(
        settings,
        CampaignRequest(text="Rappel RDV", category="notification", provider="primotexto"),
    )
    assert (spec.provider, spec.route, spec.category) == (
        "primotexto",
        "notification",
        "notification",
    )
    assert ROUTES[("primotexto", "notification")].marketing is False


def test_unknown_routes_are_refused(settings: Settings) -> None:
    with pytest.raises(RuleViolation) as caught:
        route_for("octopush", "sms", "marketing", "premium")
    assert (caught.value.field, caught.value.rule) == ("route", "route.unknown")
    with pytest.raises(RuleViolation):
        route_for("afilnet", "sms", "marketing", "whatsapp")


def test_octopush_marketing_gets_the_stop_mention_added(settings: Settings) -> None:
    spec = resolve_spec(settings, CampaignRequest(text="Soldes -30% !"))
    assert spec.provider == "octopush"  # routing: marketing SMS go through Octopush
    assert spec.text == "Soldes -30% !\nSTOP au 36111"
    assert spec.batched  # one text for all: Octopush batches
    low_cost = settings.model_copy(
        update={"octopush": settings.octopush.model_copy(update={"sms_type": "XXX"})}
    )
    assert resolve_spec(low_cost, CampaignRequest(text="Soldes")).text == "Soldes"
    personalised = resolve_spec(settings, CampaignRequest(text="Bonjour {{prenom}}"))
    assert personalised.text.endswith("STOP au 36111") and not personalised.batched
    assert personalised.placeholders == ["prenom"]
    note = resolve_spec(
        settings, CampaignRequest(text="Votre colis", category="notification", provider="octopush")
    )
    assert note.text == "Votre colis" and note.batched


@pytest.mark.parametrize("provider", ["primotexto", "afilnet"])
def test_routes_that_add_no_mention_require_one_for_marketing(
    settings: Settings, provider: str
) -> None:
    error = refused(settings, text="Soldes !", provider=provider)
    assert (error.field, error.rule) == ("text", "text.stop_mention")
    spec = resolve_spec(settings, CampaignRequest(text="Soldes ! STOP au 36111", provider=provider))
    assert spec.route == ("marketing" if provider == "primotexto" else "sms")


def test_texts_are_checked_once_when_they_have_no_placeholder(settings: Settings) -> None:
    error = refused(settings, text="x" * 500, provider="octopush", category="notification")
    assert (error.field, error.rule) == ("text", "text.length")
    error = refused(settings, text="Bonjour {{prenom", category="notification")
    assert error.rule == "placeholder.syntax"
    error = refused(settings, text="   ", category="notification")
    assert error.rule == "text.empty"


def test_other_refusals_name_their_field(settings: Settings) -> None:
    assert refused(settings).rule == "campaign.message"
    assert refused(settings, text="a", template_id="1").rule == "campaign.message"
    assert refused(settings, text="a", category="promo").field == "category"
    assert refused(settings, text="a STOP", sender="x").field == "sender"
    assert refused(settings, text="a", chunk_size=0 - 1).field == "chunk_size"
    naive = datetime(2027, 1, 5, 10)
    error = refused(settings, text="a", category="notification", send_at=naive)
    assert (error.field, error.rule) == ("send_at", "send_at.timezone")
    error = refused(settings, text="a", provider="whatsapp-plus")
    assert error.field == "provider"
    with pytest.raises(RuleViolation) as caught:
        check_name(" ")
    assert caught.value.field == "name"


def test_whatsapp_template_campaigns(settings: Settings) -> None:
    spec = resolve_spec(
        settings,
        CampaignRequest(
            template_id="7",
            params={"name": "{{prenom}}", "orderid": "{{commande}}"},
            header={"file": "https://example.com/promo.jpg"},
        ),
    )
    assert (spec.channel, spec.provider, spec.route) == ("whatsapp_template", "afilnet", "whatsapp")
    assert spec.placeholders == ["prenom", "commande"]
    assert spec.platform_id  # the sandbox's channel
    error = refused(settings, template_id="7", params={"name": "{{prenom"})
    assert (error.field, error.rule) == ("params.name", "placeholder.syntax")
    error = refused(settings, template_id="7", header={"file": "ftp://x"})
    assert error.field == "header.file"
    no_channel = settings.model_copy(
        update={"afilnet": settings.afilnet.model_copy(update={"whatsapp_platform_ids": []})}
    )
    assert refused(no_channel, template_id="7").rule == "platform_id.required"


def test_specs_round_trip_through_the_ledger_json(settings: Settings) -> None:
    spec = resolve_spec(settings, CampaignRequest(text="Bonjour {{prenom}}", chunk_size=10))
    again = type(spec).model_validate(spec.model_dump(mode="json"))
    assert again == spec
    assert len(spec.id_salt) == 32
    assert resolve_spec(settings, CampaignRequest(text="a STOP")).id_salt != spec.id_salt


def test_a_french_text_is_not_refused_on_the_primotexto_route(settings: Settings) -> None:
    spec = resolve_spec(
        settings,
        CampaignRequest(
            text="Votre œuvre est prête", category="notification", provider="primotexto"
        ),
    )
    # the spec keeps the text as written: each message records its own change
    assert spec.text == "Votre œuvre est prête"
    strict = settings.model_copy(
        update={"primotexto": settings.primotexto.model_copy(update={"text_policy": "refuse"})}
    )
    error = refused(strict, text="Votre œuvre", category="notification", provider="primotexto")
    assert error.rule == "text.charset"


# -- what campaigns read of the providers' profiles ----------------------------------------


def test_the_routes_are_the_profiles(settings: Settings) -> None:
    expected = {
        (route.provider, route.name): route
        for profile in registry.PROFILES.values()
        for route in profile.routes
    }
    assert dict(ROUTES) == expected
    # a provider with a route per category takes its category's; the others their channel's
    assert route_for("primotexto", "sms", "marketing", None).name == "marketing"
    assert route_for("primotexto", "sms", "notification", None).name == "notification"
    assert route_for("octopush", "sms", "notification", None).name == "sms"
    assert route_for("afilnet", "whatsapp", "marketing", None).name == "whatsapp"


def test_the_added_mention_is_the_one_the_profile_names(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.OCTOPUSH,
        replace(
            registry.PROFILES[Provider.OCTOPUSH],
            stop_mention=lambda settings: StopMention("36222", required=False),
        ),
    )
    assert resolve_spec(settings, CampaignRequest(text="Soldes")).text == "Soldes\nSTOP au 36222"
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.OCTOPUSH,
        replace(registry.PROFILES[Provider.OCTOPUSH], stop_mention=lambda settings: None),
    )
    assert resolve_spec(settings, CampaignRequest(text="Soldes")).text == "Soldes"


def test_a_campaign_is_batched_where_its_providers_profile_batches(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = CampaignRequest(text="Votre colis", category="notification", provider="octopush")
    assert resolve_spec(settings, request).batched
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.OCTOPUSH,
        replace(registry.PROFILES[Provider.OCTOPUSH], batch_max_recipients=None),
    )
    assert not resolve_spec(settings, request).batched
