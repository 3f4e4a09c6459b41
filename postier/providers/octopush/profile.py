"""Octopush as dispatch and campaigns see it (``ProviderProfile``; docs/PROVIDERS.md,
"Octopush")."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from postier.config import Settings
from postier.providers.base import SmsProvider
from postier.providers.octopush.client import OctopushClient
from postier.providers.octopush.codes import MAX_RECIPIENTS_PER_REQUEST
from postier.providers.profile import (
    ClientContext,
    ProviderProfile,
    ResendLookup,
    Route,
    StopMention,
)
from postier.providers.results import Provider
from postier.rules.textpolicy import TextPolicy


def _build_sms(ctx: ClientContext) -> SmsProvider:
    return OctopushClient(ctx.settings.octopush, ctx.settings.http, ctx.http)


def _account_id(settings: Settings) -> str:
    return settings.octopush.login


def _text_policy(settings: Settings) -> TextPolicy:
    return settings.octopush.text_policy


def _text_transport(settings: Settings) -> str | None:
    # legacy and v1 have different length limits (rules.limits)
    return settings.octopush.transport


def _stop_mention(settings: Settings) -> StopMention | None:
    """French premium (FR) marketing without « STOP au XXXXX » is error 121 (Octopush SMS API
    docs, ``sms_type``); the low-cost type (XXX) needs none; other types get it in campaigns."""
    octopush = settings.octopush
    if octopush.sms_type == "XXX":
        return None
    return StopMention(octopush.stop_short_code, required=octopush.sms_type == "FR")


def _balance(client: SmsProvider) -> Mapping[str, Decimal | None]:
    assert isinstance(client, OctopushClient)
    return dict(client.balance())


def _funds(client: SmsProvider) -> tuple[str, Decimal]:
    # the credit call gives euros on both APIs; the legacy balance is per SMS type
    assert isinstance(client, OctopushClient)
    return "euro", client.credit()


PROFILE = ProviderProfile(
    provider=Provider.OCTOPUSH,
    channels=frozenset({"sms"}),
    routes=(
        Route(
            Provider.OCTOPUSH,
            "sms",
            marketing=True,
            stop="add",
            source="Octopush API: a French premium text without « STOP au XXXXX » is error 121",
        ),
    ),
    # one request carries up to 500 recipients (v1's limit; docs/PROVIDERS.md)
    batch_max_recipients=MAX_RECIPIENTS_PER_REQUEST,
    # no status API; a repeated request_id is answered 120 (already accepted)
    resend_lookup=ResendLookup.SAME_REQUEST,
    build_sms=_build_sms,
    account_id=_account_id,
    text_policy=_text_policy,
    text_transport=_text_transport,
    stop_mention=_stop_mention,
    balance=_balance,
    funds=_funds,
)
