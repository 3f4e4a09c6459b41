"""What a campaign sends, checked once when it is created and stored as ``Campaign.spec``.

``resolve_spec`` turns the caller's request into a ``CampaignSpec``: provider and route chosen,
marketing rules applied (a notification-only route refused, the STOP mention added or
required, ``compliance.py``), placeholders checked, the sender validated. What depends on the
contact (its number, its fields, the text's length once personalised) is checked per contact
by the fan-out. Every refusal is a ``RuleViolation`` naming the field and the rule.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from postier.campaigns.audience import DEFAULT_PHONE_FIELD
from postier.campaigns.compliance import marketing_text, route_for
from postier.campaigns.personalise import check_template, placeholders
from postier.config import Settings
from postier.dispatch.routing import choose_provider, text_transport_for
from postier.dispatch.rows import sms_text
from postier.providers.registry import batch_max_recipients
from postier.rules import check_text, validate_sender
from postier.rules.callback_targets import check_callback_url
from postier.rules.errors import RuleViolation
from postier.rules.inputs import (
    MAX_ID_CHARS,
    check_header,
    check_optional_string,
    check_send_at,
    check_string,
    check_template_params,
)

Category = Literal["marketing", "notification"]
CampaignChannel = Literal["sms", "whatsapp_template"]

#: the most characters of a campaign name (the ledger column)
MAX_NAME = 200


class CampaignSpec(BaseModel):
    """A campaign's message, as the fan-out builds it for each contact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: CampaignChannel
    category: Category
    provider: str
    route: str
    #: the SMS text as sent, placeholders included (STOP mention added where demanded)
    text: str = ""
    template_id: str | None = None
    #: WhatsApp template parameters; values may hold placeholders
    params: dict[str, str] = {}
    header: dict[str, Any] | None = None
    platform_id: str | None = None
    sender: str | None = None
    #: the contact field holding the number
    phone_field: str = DEFAULT_PHONE_FIELD
    #: CSV audiences: campaign field name -> CSV header
    columns: dict[str, str] = {}
    #: the fields the text or the parameters use
    placeholders: list[str] = []
    #: every message has the same text and the provider takes many recipients per request
    batched: bool = False
    chunk_size: int
    #: the start the caller asked for (None: now)
    send_at: datetime | None = None
    #: the secret message ids of this campaign are derived from (``fanout.message_id``)
    id_salt: str
    #: where its messages' status events go (https), instead of the global target
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignRequest:
    """What the caller asks for (``producers.campaigns.create``)."""

    text: str | None = None
    template_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    header: Mapping[str, Any] | None = None
    platform_id: str | None = None
    category: str = "marketing"
    provider: str | None = None
    route: str | None = None
    sender: str | None = None
    send_at: datetime | None = None
    phone_field: str = DEFAULT_PHONE_FIELD
    columns: Mapping[str, str] = field(default_factory=dict)
    chunk_size: int | None = None
    callback_url: str | None = None


def check_name(name: str) -> str:
    """A campaign name: 1 to 200 characters, not only blanks."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise RuleViolation(
            "name", "name.length", f"a campaign name has 1 to {MAX_NAME} characters"
        )
    return name.strip()


def _check_send_at(send_at: datetime | None) -> datetime | None:
    return check_send_at(send_at, now=datetime.now(UTC))


def _check_request(request: CampaignRequest) -> None:
    """Types, characters and lengths of the request's free-form values."""
    check_optional_string(request.text, field="text", max_chars=10_000)
    check_optional_string(request.template_id, field="template_id", max_chars=MAX_ID_CHARS)
    check_optional_string(request.platform_id, field="platform_id", max_chars=MAX_ID_CHARS)
    check_optional_string(request.provider, field="provider", max_chars=MAX_ID_CHARS)
    check_optional_string(request.route, field="route", max_chars=32)
    check_optional_string(request.sender, field="sender", max_chars=64)
    check_string(request.phone_field, field="phone_field", max_chars=64)
    check_template_params(request.params)
    check_header(request.header)
    if not isinstance(request.columns, Mapping) or len(request.columns) > 200:
        raise RuleViolation("csv_columns", "csv_columns.type", "a mapping of at most 200 fields")
    for name, source in request.columns.items():
        check_string(name, field="csv_columns", max_chars=200)
        check_string(source, field="csv_columns", max_chars=200)
    if request.chunk_size is not None and (
        isinstance(request.chunk_size, bool) or not isinstance(request.chunk_size, int)
    ):
        raise RuleViolation("chunk_size", "chunk_size.type", "chunk_size is a whole number")


def resolve_spec(settings: Settings, request: CampaignRequest) -> CampaignSpec:
    """Check ``request`` and decide how its messages go; raises ``RuleViolation``."""
    _check_request(request)
    if request.category not in ("marketing", "notification"):
        raise RuleViolation("category", "category.value", "use 'marketing' or 'notification'")
    category: Category = "marketing" if request.category == "marketing" else "notification"
    if (request.text is None) == (request.template_id is None):
        raise RuleViolation(
            "text", "campaign.message", "give either a text (SMS) or a WhatsApp template_id"
        )
    chunk_size = request.chunk_size or settings.campaigns.chunk_size
    if not 1 <= chunk_size <= 20_000:
        raise RuleViolation("chunk_size", "chunk_size.range", "chunk_size is 1 to 20,000")
    if not request.phone_field.strip():
        raise RuleViolation("phone_field", "phone_field.required", "name the number field")
    common: dict[str, Any] = {
        "category": category,
        "phone_field": request.phone_field,
        "columns": dict(request.columns),
        "chunk_size": chunk_size,
        "send_at": _check_send_at(request.send_at),
        "id_salt": secrets.token_hex(16),
        "callback_url": None
        if request.callback_url is None
        else check_callback_url(request.callback_url, allow_http=settings.callbacks.allow_http),
    }
    if request.text is not None:
        return _sms_spec(settings, request, request.text, common)
    return _template_spec(settings, request, str(request.template_id), common)


def _sms_spec(
    settings: Settings, request: CampaignRequest, text: str, common: dict[str, Any]
) -> CampaignSpec:
    category = common["category"]
    provider = choose_provider(
        settings, channel="sms", category=category, requested=request.provider
    )
    route = route_for(provider, "sms", category, request.route)
    used = check_template(text)
    if category == "marketing":
        text = marketing_text(settings, route, text)
    transport = text_transport_for(settings, provider)
    if not used:
        # the spec keeps the text as written; each message records its own change
        sent = sms_text(settings, provider, text, transport=transport).text
        check_text(provider, sent, transport=transport, field="text")
    elif not text.strip():
        raise RuleViolation("text", "text.empty", "message text is empty")
    sender = validate_sender(request.sender, field="sender") if request.sender else None
    return CampaignSpec(
        channel="sms",
        provider=provider,
        route=route.name,
        text=text,
        sender=sender,
        placeholders=used,
        # one text for all, through a provider that batches (Octopush: up to 500 recipients
        # per request, docs/PROVIDERS.md)
        batched=batch_max_recipients(provider) is not None and not used,
        **common,
    )


def _template_spec(
    settings: Settings, request: CampaignRequest, template_id: str, common: dict[str, Any]
) -> CampaignSpec:
    from postier.dispatch.templates import header_from_payload

    if not template_id.strip():
        raise RuleViolation("template_id", "template_id.required", "template_id is empty")
    provider = choose_provider(
        settings, channel="whatsapp", category=common["category"], requested=request.provider
    )
    route = route_for(provider, "whatsapp", common["category"], request.route)
    params: dict[str, str] = {}
    used: list[str] = []
    for name, value in request.params.items():
        if not str(name).strip():
            raise RuleViolation("params", "params.name", "a template parameter has no name")
        used.extend(check_template(str(value), field=f"params.{name}"))
        params[str(name)] = str(value)
    header = dict(request.header) if request.header else None
    header_from_payload(header)
    platform = request.platform_id or next(iter(settings.afilnet.whatsapp_platform_ids), None)
    if not platform:
        raise RuleViolation(
            "platform_id",
            "platform_id.required",
            "no WhatsApp channel: pass platform_id or set POSTIER_AFILNET__WHATSAPP_PLATFORM_IDS",
        )
    return CampaignSpec(
        channel="whatsapp_template",
        provider=provider,
        route=route.name,
        template_id=template_id.strip(),
        params=params,
        header=header,
        platform_id=str(platform),
        placeholders=list(dict.fromkeys(used)),
        **common,
    )


def spec_placeholders(spec: CampaignSpec) -> list[str]:
    """The fields a contact must have for this campaign's message."""
    if spec.channel == "sms":
        return placeholders(spec.text)
    return list(spec.placeholders)
