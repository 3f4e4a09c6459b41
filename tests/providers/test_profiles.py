"""Each provider's profile, capability by capability: what dispatch and campaigns read of it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from postier.config import Settings
from postier.providers.afilnet.profile import PROFILE as AFILNET
from postier.providers.octopush.profile import PROFILE as OCTOPUSH
from postier.providers.primotexto import PROFILE as PRIMOTEXTO
from postier.providers.profile import ResendLookup, StopMention

DEFAULTS = Settings(_env_file=None)


def with_provider(name: str, **fields: Any) -> Settings:
    section = getattr(DEFAULTS, name).model_copy(update=fields)
    return DEFAULTS.model_copy(update={name: section})


# -- Octopush ------------------------------------------------------------------------------


def test_octopush_sends_sms_in_batches_of_500_settled_by_the_same_request() -> None:
    assert OCTOPUSH.channels == frozenset({"sms"})
    assert OCTOPUSH.batch_max_recipients == 500
    assert OCTOPUSH.resend_lookup is ResendLookup.SAME_REQUEST
    assert [route.name for route in OCTOPUSH.routes] == ["sms"]
    assert OCTOPUSH.routes[0].stop == "add"


@pytest.mark.parametrize(
    ("sms_type", "expected"),
    [
        ("FR", StopMention("36999", required=True)),
        ("WWW", StopMention("36999", required=False)),
        ("XXX", None),
    ],
)
def test_octopush_stop_mention_follows_the_sms_type(
    sms_type: str, expected: StopMention | None
) -> None:
    settings = with_provider("octopush", sms_type=sms_type, stop_short_code="36999")

    assert OCTOPUSH.stop_mention(settings) == expected


@pytest.mark.parametrize(
    ("sms_type", "category", "text", "expected"),
    [
        ("FR", "marketing", "Soldes", "Soldes\nSTOP au 36999"),
        ("FR", "marketing", "Soldes STOP au 36111", "Soldes STOP au 36111"),
        ("FR", "marketing", "   ", "   "),
        ("FR", "notification", "Code 1234", "Code 1234"),
        ("WWW", "marketing", "Soldes", "Soldes"),
        ("XXX", "marketing", "Soldes", "Soldes"),
    ],
)
def test_octopush_prepares_marketing_with_the_mention_only_where_it_is_required(
    sms_type: str, category: str, text: str, expected: str
) -> None:
    settings = with_provider("octopush", sms_type=sms_type, stop_short_code="36999")

    assert OCTOPUSH.prepare_text(settings, text, category) == expected


def test_octopush_reads_its_own_settings() -> None:
    settings = with_provider("octopush", login="ops-octopush", text_policy="refuse", transport="v1")

    assert OCTOPUSH.account_id(settings) == "ops-octopush"
    assert OCTOPUSH.text_policy(settings) == "refuse"
    assert OCTOPUSH.text_transport(settings) == "v1"
    assert OCTOPUSH.text_transport(DEFAULTS) == "legacy"


# -- Primotexto ----------------------------------------------------------------------------


def test_primotexto_sends_sms_one_by_one_settled_by_number() -> None:
    assert PRIMOTEXTO.channels == frozenset({"sms"})
    assert PRIMOTEXTO.batch_max_recipients is None
    assert PRIMOTEXTO.resend_lookup is ResendLookup.BY_NUMBER
    routes = {route.name: route for route in PRIMOTEXTO.routes}
    assert set(routes) == {"notification", "marketing"}
    assert routes["notification"].marketing is False
    assert routes["marketing"].stop == "require"


def test_primotexto_adds_no_mention_and_reads_its_own_settings() -> None:
    settings = with_provider(
        "primotexto", api_key=SecretStr("0123456789abcdef"), text_policy="refuse"
    )

    assert PRIMOTEXTO.stop_mention(settings) is None
    assert PRIMOTEXTO.prepare_text(settings, "Soldes", "marketing") == "Soldes"
    assert PRIMOTEXTO.account_id(settings) == "abcdef"
    assert PRIMOTEXTO.text_policy(settings) == "refuse"
    assert PRIMOTEXTO.text_transport(settings) is None


# -- Afilnet -------------------------------------------------------------------------------


def test_afilnet_sends_sms_and_whatsapp_one_by_one_without_an_sms_lookup() -> None:
    assert AFILNET.channels == frozenset({"sms", "whatsapp"})
    assert AFILNET.batch_max_recipients is None
    assert AFILNET.resend_lookup is ResendLookup.NONE
    routes = {route.name: route for route in AFILNET.routes}
    assert set(routes) == {"sms", "whatsapp"}
    assert routes["sms"].stop == "require"
    assert routes["whatsapp"].stop == "none"


def test_afilnet_adds_no_mention_and_reads_its_own_settings() -> None:
    settings = with_provider("afilnet", user="ops@example.fr", sms_text_policy="transliterate")

    assert AFILNET.stop_mention(settings) is None
    assert AFILNET.prepare_text(settings, "Soldes", "marketing") == "Soldes"
    assert AFILNET.account_id(settings) == "ops@example.fr"
    assert AFILNET.text_policy(settings) == "transliterate"
    assert AFILNET.text_transport(settings) is None
