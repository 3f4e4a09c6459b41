"""Afilnet as dispatch and campaigns see it (``ProviderProfile``; docs/PROVIDERS.md, "Afilnet")."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from postier.config import Settings
from postier.providers.afilnet.api import AfilnetApi
from postier.providers.afilnet.sms import AfilnetSms
from postier.providers.base import SmsProvider
from postier.providers.profile import (
    ClientContext,
    ProviderProfile,
    ResendLookup,
    Route,
    no_stop_mention,
)
from postier.providers.results import Provider
from postier.rules.textpolicy import TextPolicy


def shared_api(ctx: ClientContext) -> AfilnetApi:
    """The process's one Afilnet endpoint client, shared by SMS, WhatsApp and contact groups."""
    return ctx.shared(
        AfilnetApi, lambda: AfilnetApi(ctx.settings.afilnet, ctx.settings.http, ctx.http)
    )


def _build_sms(ctx: ClientContext) -> SmsProvider:
    return AfilnetSms(shared_api(ctx), ctx.settings.afilnet.sms_sender)


def _account_id(settings: Settings) -> str:
    return settings.afilnet.user


def _text_policy(settings: Settings) -> TextPolicy:
    return settings.afilnet.sms_text_policy


def _text_transport(settings: Settings) -> str | None:
    return None


def _balance(client: SmsProvider) -> Mapping[str, Decimal | None]:
    assert isinstance(client, AfilnetSms)
    return {"credits": client.balance()}


PROFILE = ProviderProfile(
    provider=Provider.AFILNET,
    channels=frozenset({"sms", "whatsapp"}),
    routes=(
        Route(
            Provider.AFILNET,
            "sms",
            marketing=True,
            stop="require",
            source="unconfirmed: no Afilnet document on marketing SMS; French rules want a free"
            " opt-out in every marketing SMS",
        ),
        Route(
            Provider.AFILNET,
            "whatsapp",
            marketing=True,
            stop="none",
            source="Afilnet API: templates are approved with their own wording",
        ),
    ),
    # sendsms takes one recipient
    batch_max_recipients=None,
    # no SMS lookup can tell whether a request arrived (WhatsApp: the chat, by channel)
    resend_lookup=ResendLookup.NONE,
    build_sms=_build_sms,
    account_id=_account_id,
    text_policy=_text_policy,
    text_transport=_text_transport,
    stop_mention=no_stop_mention,
    balance=_balance,
)
